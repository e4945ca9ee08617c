"""Categorical domains and spelling normalisation.

The database's free-text categories are spelled inconsistently (``hot arid`` /
``desert (hot arid)``, a non-breaking space inside ``warm-summer humid continental``).
:func:`normalise_categories` maps each value onto one spelling; :data:`DOMAINS` lists the known
values, used by validation and, later, by the API.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas only for the frame functions: the service never imports it
    import pandas as pd

#: Known values of each categorical input, after normalisation.
DOMAINS: dict[str, tuple[str, ...]] = {
    "season": ("summer", "autumn", "winter", "spring", "hot/wet", "cool/dry"),
    "gender": ("female", "male"),
    "cooling_type": ("air conditioned", "mixed mode", "naturally ventilated"),
    "building_type": ("office", "classroom", "multifamily housing", "senior center", "others"),
    "climate": (
        "cold semi-arid",
        "continental subarctic",
        "cool-summer mediterranean",
        "hot arid",
        "hot desert",
        "hot semi-arid",
        "hot-summer mediterranean",
        "humid midlatitude",
        "humid subtropical",
        "mediterranean",
        "monsoon-influenced hot-summer humid continental",
        "monsoon-influenced humid subtropical",
        "monsoon-influenced temperate oceanic",
        "semi arid high altitude",
        "semi arid midlatitude",
        "subtropical highland",
        "temperate",
        "temperate marine",
        "temperate oceanic",
        "tropical",
        "tropical dry savanna",
        "tropical monsoon",
        "tropical rainforest",
        "tropical savanna",
        "tropical wet savanna",
        "warm-summer humid continental",
        "warm-summer mediterranean",
        "west coast marine",
        "wet equatorial",
    ),
}

#: Other spellings of known values; ``None`` means "no information".
SYNONYMS: dict[str, dict[str, str | None]] = {
    "season": {
        "fall": "autumn",
        "hot wet": "hot/wet",
        "cool dry": "cool/dry",
        "verao": "summer",
        "inverno": "winter",
        "outono": "autumn",
        "primavera": "spring",
    },
    "gender": {
        "undefined": None,
        "unknown": None,
        "m": "male",
        "f": "female",
        "masculino": "male",
        "feminino": "female",
    },
    "cooling_type": {
        "ac": "air conditioned",
        "hvac": "air conditioned",
        "nv": "naturally ventilated",
        "natural ventilation": "naturally ventilated",
        "mm": "mixed mode",
        "mixed-mode": "mixed mode",
    },
    "building_type": {
        "other": "others",
        "multi-family housing": "multifamily housing",
        "residential": "multifamily housing",
    },
    "climate": {"desert (hot arid)": "hot arid", "temperature marine": "temperate marine"},
}


def normalise_value(column: str, value: object) -> str | None:
    r"""Return the one spelling of a categorical value.

    Parameters
    ----------
    column
        Canonical column name, e.g. ``"climate"``.
    value
        The value as found in the data.

    Returns
    -------
    str or None
        Lower-case text with single spaces, synonyms resolved; ``None`` for missing values.

    Examples
    --------
    >>> normalise_value("climate", "Desert (Hot\u00a0Arid) ")
    'hot arid'
    >>> normalise_value("season", "Fall")
    'autumn'
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = re.sub(r"\s+", " ", str(value).replace("\u00a0", " ")).strip().lower()
    if not text:
        return None
    synonyms = SYNONYMS.get(column, {})
    return synonyms.get(text, text)


def normalise_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise the spelling of every column of ``frame`` that has a known domain.

    Parameters
    ----------
    frame
        Data with canonical column names.

    Returns
    -------
    pandas.DataFrame
        A copy with normalised categorical columns (as ``object`` dtype with ``None``).
    """
    out = frame.copy()
    for column in DOMAINS:
        if column in out.columns:
            out[column] = normalise_column(out[column], column)
    return out


def normalise_column(values: pd.Series, column: str) -> pd.Series:
    """:func:`normalise_value` over a column, each distinct value once (``object`` dtype,
    ``None`` where missing).
    """
    values = values.astype(object)
    mapping = {v: normalise_value(column, v) for v in values.dropna().unique()}
    return values.map(mapping).astype(object).where(values.notna(), None)


def unknown_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """Return a boolean mask of rows whose ``column`` value is outside its known domain."""
    domain = set(DOMAINS[column])
    values = frame[column]
    return values.notna() & ~values.isin(domain)
