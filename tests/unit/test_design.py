from __future__ import annotations

import numpy as np
import pandas as pd

from conforto._data.categories import normalise_categories
from conforto._model.inputs import FeatureSpec, build_spec, encode
from conforto._model.manifest import Manifest
from tests.factories import manifest_of


def test_spec_orders_inputs_and_learns_levels(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    measurements, metadata = frames
    frame = normalise_categories(measurements.merge(metadata, on="building_id"))
    spec = build_spec(frame, categorical=("season", "cooling_type"), derived=("pmv_iso",))
    assert spec.names[:3] == ["ta", "tr", "rh"]
    assert spec.derived == ["pmv_iso"]
    kinds = {f.name: f for f in spec.features}
    assert "ht" not in kinds  # absent from the data
    assert set(kinds["season"].levels) <= {"summer", "winter", "autumn"}
    manifest = manifest_of(features=spec.features)  # as the artifact keeps it
    assert FeatureSpec(Manifest.model_validate_json(manifest.model_dump_json()).features) == spec


def test_encode_maps_unknown_categories_and_missing_inputs_to_nan() -> None:
    frame = pd.DataFrame({"ta": [22.0, 25.0], "season": ["summer", "monsoon"]})
    spec = build_spec(
        pd.DataFrame({"ta": [20.0] * 40, "rh": [50.0] * 40, "season": ["summer"] * 40}),
        categorical=("season",),
        derived=(),
    )
    matrix = encode(frame, spec)
    assert spec.names == ["ta", "rh", "season"]
    assert matrix[:, 0].tolist() == [22.0, 25.0]
    assert np.isnan(matrix[:, 1]).all()  # rh not given
    assert matrix[0, 2] == 0.0
    assert np.isnan(matrix[1, 2])
