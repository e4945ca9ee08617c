"""The model's inputs: which columns, in which order, and how they become a numeric matrix.

The same :class:`FeatureSpec` encodes training data and, later, each API request, so the
booster always sees identical columns. Categorical values become integer codes in the order of
their training levels; a level never seen in training becomes NaN (missing), as does any
missing value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto.bounds import PHYSICAL_BOUNDS
from conforto.categories import normalise_value
from conforto.features import FAST_FEATURES, FEATURES, comfort_features

#: Numeric inputs a caller can send: environment, person, outdoor climate.
NUMERIC_INPUTS: tuple[str, ...] = (
    "ta",
    "tr",
    "rh",
    "vel",
    "met",
    "clo",
    "age",
    "ht",
    "wt",
    "t_out_isd",
    "rh_out_isd",
    "t_mot_isd",
    "lat",
    "lon",
)
#: Categorical inputs: season, person and building context, location.
CATEGORICAL_INPUTS: tuple[str, ...] = (
    "season",
    "gender",
    "climate",
    "cooling_type",
    "building_type",
    "country",
)
#: Categories rarer than this many training rows are folded into "missing".
MIN_LEVEL_ROWS = 30


@dataclass(frozen=True)
class Feature:
    """One column of the model matrix."""

    name: str
    kind: str  # "numeric", "categorical" or "derived"
    unit: str = ""
    description: str = ""
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered feature list; derived features are computed from the inputs."""

    features: tuple[Feature, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        """Feature names in matrix order."""
        return [f.name for f in self.features]

    @property
    def categorical_indices(self) -> list[int]:
        """Matrix columns that hold category codes."""
        return [i for i, f in enumerate(self.features) if f.kind == "categorical"]

    @property
    def derived(self) -> list[str]:
        """Physics features computed from the inputs."""
        return [f.name for f in self.features if f.kind == "derived"]

    @property
    def inputs(self) -> list[str]:
        """Columns a caller provides."""
        return [f.name for f in self.features if f.kind != "derived"]

    def to_dict(self) -> list[dict[str, Any]]:
        """JSON-ready list of features."""
        return [asdict(f) for f in self.features]

    @classmethod
    def from_dict(cls, items: list[dict[str, Any]]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(Feature(**{**i, "levels": tuple(i.get("levels", ()))}) for i in items))


def build_spec(
    frame: pd.DataFrame,
    *,
    numeric: tuple[str, ...] = NUMERIC_INPUTS,
    categorical: tuple[str, ...] = CATEGORICAL_INPUTS,
    derived: tuple[str, ...] = FAST_FEATURES,
) -> FeatureSpec:
    """Choose the features and learn the categorical levels from training data.

    Parameters
    ----------
    frame
        Training data, canonical columns, categories normalised.
    numeric, categorical, derived
        Candidate columns; inputs absent from ``frame`` or entirely empty are left out.

    Returns
    -------
    FeatureSpec
        Numeric inputs, then categorical inputs (levels with at least
        :data:`MIN_LEVEL_ROWS` rows, sorted), then derived physics features.
    """
    features: list[Feature] = []
    for name in numeric:
        if name in frame.columns and frame[name].notna().any():
            b = PHYSICAL_BOUNDS.get(name)
            features.append(
                Feature(name, "numeric", b.unit if b else "", b.description if b else "")
            )
    for name in categorical:
        if name in frame.columns and frame[name].notna().any():
            counts = frame[name].dropna().astype(str).value_counts()
            levels = tuple(sorted(counts[counts >= MIN_LEVEL_ROWS].index))
            features.append(Feature(name, "categorical", "", f"{name} category", levels))
    for name in derived:
        unit, description = FEATURES[name]
        features.append(Feature(name, "derived", unit, description))
    return FeatureSpec(tuple(features))


def encode(frame: pd.DataFrame, spec: FeatureSpec) -> npt.NDArray[np.float64]:
    """Turn canonical data into the model matrix (rows × ``spec.names``).

    Parameters
    ----------
    frame
        Data with canonical column names; absent optional inputs are treated as missing.
    spec
        The feature list learned at training.

    Returns
    -------
    numpy.ndarray
        Float matrix; NaN marks missing values and unseen categories.
    """
    n = len(frame)
    derived = comfort_features(frame, spec.derived) if spec.derived else None
    matrix = np.full((n, len(spec.features)), np.nan)
    for j, feature in enumerate(spec.features):
        if feature.kind == "derived":
            assert derived is not None  # noqa: S101 - set above whenever a derived feature exists
            matrix[:, j] = derived[feature.name].to_numpy(dtype=np.float64)
        elif feature.name not in frame.columns:
            continue
        elif feature.kind == "numeric":
            matrix[:, j] = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        else:
            codes = {level: float(i) for i, level in enumerate(feature.levels)}
            values = frame[feature.name]
            lookup = {
                v: codes.get(normalise_value(feature.name, v) or "", np.nan)
                for v in values.dropna().unique()
            }  # normalise each distinct value once
            matrix[:, j] = values.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
    return matrix
