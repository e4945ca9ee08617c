"""The model's inputs: which columns, in which order, and how they become a numeric matrix.

The same :class:`FeatureSpec` encodes training data and, later, each API request, so the
booster always sees identical columns. Categorical values become integer codes in the order of
their training levels; a level never seen in training becomes NaN (missing), as does any
missing value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from conforto._data.bounds import PHYSICAL_BOUNDS
from conforto._data.categories import normalise_value
from conforto._data.target import sensation_class
from conforto._physics.features import FAST_FEATURES, FEATURES, comfort_features
from conforto.errors import DataError

if TYPE_CHECKING:  # the frame functions only: serving reads FeatureSpec without pandas
    import pandas as pd

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Input:
    """One input a caller can give: the API's fields and the model's candidate columns.

    Attributes
    ----------
    name
        Canonical column name (the database's vocabulary).
    kind
        ``"numeric"`` (bounds in :data:`conforto._data.bounds.PHYSICAL_BOUNDS`) or ``"categorical"``
        (known values in :data:`conforto._data.categories.DOMAINS`, or free text when it has none).
    required
        The API refuses an observation without it; batch prediction scores such rows and flags
        them.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    required: bool = False


#: Every input, in the model matrix's order: the indoor environment and the person, the
#: outdoor climate, the location; then the context (season, person, building, country).
INPUTS: tuple[Input, ...] = (
    Input("ta", "numeric", required=True),
    Input("tr", "numeric"),
    Input("rh", "numeric", required=True),
    Input("vel", "numeric", required=True),
    Input("met", "numeric", required=True),
    Input("clo", "numeric", required=True),
    Input("age", "numeric"),
    Input("ht", "numeric"),
    Input("wt", "numeric"),
    Input("t_out_isd", "numeric"),
    Input("rh_out_isd", "numeric"),
    Input("t_mot_isd", "numeric"),
    Input("lat", "numeric"),
    Input("lon", "numeric"),
    Input("season", "categorical"),
    Input("gender", "categorical"),
    Input("climate", "categorical"),
    Input("cooling_type", "categorical"),
    Input("building_type", "categorical"),
    Input("country", "categorical"),
)
#: One observation's inputs as a caller gives them: input name → a number (in the input's unit)
#: or a category's name; inputs left out are absent.
Observation = dict[str, float | str]
#: One observation as a caller sends it: the API's example and the MLflow model's input example.
EXAMPLE_OBSERVATION: Observation = {
    "ta": 24.5,
    "rh": 55.0,
    "vel": 0.15,
    "met": 1.1,
    "clo": 0.6,
    "tr": 25.0,
    "t_mot_isd": 22.0,
    "season": "summer",
    "cooling_type": "air conditioned",
}
#: Numeric inputs: environment, person, outdoor climate, location.
NUMERIC_INPUTS = tuple(i.name for i in INPUTS if i.kind == "numeric")
#: Categorical inputs: season, person and building context, location.
CATEGORICAL_INPUTS = tuple(i.name for i in INPUTS if i.kind == "categorical")
#: Inputs the API requires.
REQUIRED_INPUTS = tuple(i.name for i in INPUTS if i.required)
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
            import pandas as pd

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


def prepare(frame: pd.DataFrame) -> tuple[pd.DataFrame, IntArray, IntArray]:
    """The rows a model learns from or is scored on: those with a vote and a building.

    Parameters
    ----------
    frame
        Joined, canonical data with ``thermal_sensation`` and ``building_id``.

    Returns
    -------
    tuple
        The rows (index reset), their class labels (0 cool, 1 neutral, 2 warm) and their
        buildings (the groups of every split).

    Raises
    ------
    DataError
        When fewer than two buildings remain (nothing to group by).
    """
    keep = frame["thermal_sensation"].notna() & frame["building_id"].notna()
    rows = frame.loc[keep].reset_index(drop=True)
    if rows["building_id"].nunique() < 2:
        raise DataError("training needs votes from at least two buildings (grouped evaluation).")
    y = sensation_class(rows["thermal_sensation"]).astype(np.int64)
    groups = rows["building_id"].to_numpy(dtype=np.int64)
    return rows, y, groups
