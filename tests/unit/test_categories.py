from __future__ import annotations

import pandas as pd

from conforto._data.categories import normalise_categories, normalise_value, unknown_values


def test_normalise_value_fixes_spelling_and_synonyms() -> None:
    assert normalise_value("climate", "warm-summer\u00a0humid continental") == (
        "warm-summer humid continental"
    )
    assert normalise_value("climate", " Desert (hot arid)") == "hot arid"
    assert normalise_value("season", "FALL") == "autumn"
    assert normalise_value("gender", "undefined") is None
    assert normalise_value("season", float("nan")) is None
    assert normalise_value("season", "  ") is None


def test_normalise_categories_leaves_other_columns() -> None:
    frame = pd.DataFrame({"season": ["Summer", None], "city": ["Sydney", "Lyon"]})
    out = normalise_categories(frame)
    assert out["season"].tolist() == ["summer", None]
    assert out["city"].tolist() == ["Sydney", "Lyon"]
    assert frame["season"].tolist()[0] == "Summer"  # input untouched


def test_unknown_values_flags_values_outside_domain() -> None:
    frame = normalise_categories(pd.DataFrame({"cooling_type": ["AC", "solar chimney", None]}))
    assert unknown_values(frame, "cooling_type").tolist() == [False, True, False]
