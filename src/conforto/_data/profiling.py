"""Per-column statistics and histograms: the reference later drift checks compare against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np

from conforto._data.bounds import PHYSICAL_BOUNDS
from conforto._data.categories import DOMAINS
from conforto._data.columns import NUMERIC
from conforto._data.load import fingerprint, with_month
from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._reports import figure_uri, new_figure, render

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

#: Numeric columns that identify rows or files rather than measure anything.
_IDENTIFIERS = frozenset({"index", "record_id", "building_id", "year", "records", "database"})
#: Categorical columns worth profiling (free text such as contributor names is not).
PROFILED_CATEGORICAL = (
    *DOMAINS,
    "region",
    "country",
    "thermal_acceptability",
    "thermal_preference",
)
HIST_BINS = 30
TOP_VALUES = 20
#: The quantiles of numeric columns, in :class:`NumericProfile`'s order.
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class Histogram(TypedDict):
    """Bin edges (the column's unit) and counts."""

    edges: list[float]
    counts: list[int]


class NumericProfile(TypedDict):
    """A numeric column: count, null rate, unit, moments, quantiles and histogram (``None``
    each for a column without a finite value).
    """

    kind: Literal["numeric"]
    count: int
    null_rate: float
    unit: str
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    p01: float | None
    p05: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None
    p99: float | None
    hist: Histogram


class CategoricalProfile(TypedDict):
    """A categorical column: count, null rate, distinct values, the most frequent ones and the
    share of each value.
    """

    kind: Literal["categorical"]
    count: int
    null_rate: float
    n_unique: int
    top: dict[str, int]
    frequencies: dict[str, float]


class Profile(TypedDict):
    """A data set's profile."""

    n_rows: int
    #: :func:`conforto._data.load.fingerprint` of the frame.
    sha256: str
    columns: dict[str, NumericProfile | CategoricalProfile]


def _numeric_profile(values: pd.Series) -> NumericProfile:
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = x[np.isfinite(x)]
    bounds = PHYSICAL_BOUNDS.get(str(values.name))
    empty = finite.size == 0
    counts, edges = np.histogram(finite, bins=HIST_BINS) if not empty else (np.zeros(0), [])
    q = np.quantile(finite, _QUANTILES).tolist() if not empty else [None] * 7
    return {
        "kind": "numeric",
        "count": int(finite.size),
        "null_rate": float(1 - finite.size / max(len(x), 1)),
        "unit": bounds.unit if bounds else "",
        "mean": None if empty else float(finite.mean()),
        "std": None if empty else float(finite.std()),
        "min": None if empty else float(finite.min()),
        "max": None if empty else float(finite.max()),
        "p01": q[0],
        "p05": q[1],
        "p25": q[2],
        "p50": q[3],
        "p75": q[4],
        "p95": q[5],
        "p99": q[6],
        "hist": {"edges": np.asarray(edges).tolist(), "counts": np.asarray(counts).tolist()},
    }


def _categorical_profile(values: pd.Series) -> CategoricalProfile:
    counts = values.dropna().astype(str).value_counts()
    return {
        "kind": "categorical",
        "count": int(values.notna().sum()),
        "null_rate": float(values.isna().mean()),
        "n_unique": int(counts.size),
        "top": {str(k): int(v) for k, v in counts.head(TOP_VALUES).items()},
        "frequencies": {str(k): float(v) for k, v in (counts / max(counts.sum(), 1)).items()},
    }


def profile_frame(frame: pd.DataFrame) -> Profile:
    """Describe every measured numeric and every profiled categorical column.

    Parameters
    ----------
    frame
        Data with canonical columns.

    Returns
    -------
    Profile
        Numeric columns: count, null rate, mean, std, min, quantiles, max and a 30-bin
        histogram; categorical ones: value frequencies.
    """
    columns: dict[str, NumericProfile | CategoricalProfile] = {}
    for name in frame.columns:
        if name in NUMERIC and name not in _IDENTIFIERS:
            columns[name] = _numeric_profile(frame[name])
        elif name in PROFILED_CATEGORICAL:
            columns[name] = _categorical_profile(frame[name])
    return {"n_rows": len(frame), "sha256": fingerprint(frame), "columns": columns}


def histogram_grid(profile: Profile, ncols: int = 5) -> str:
    """Draw every numeric column's histogram in one grid; return it as a PNG data URI."""
    numeric = {
        n: c
        for n, c in profile["columns"].items()
        if c["kind"] == "numeric" and c["hist"]["counts"]
    }
    nrows = max(1, -(-len(numeric) // ncols))
    fig = new_figure(3.0 * ncols, 1.9 * nrows, layout=None)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.03, top=0.97, wspace=0.25, hspace=0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, stats) in zip(axes, numeric.items(), strict=False):
        ax.stairs(
            stats["hist"]["counts"], np.asarray(stats["hist"]["edges"]), fill=True, color="#4c72b0"
        )
        ax.set_title(f"{name} [{stats['unit']}]" if stats["unit"] else name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(numeric) :]:
        ax.set_axis_off()
    return figure_uri(fig, dpi=72)


def write_profile(profile: Profile, out: Path) -> tuple[Path, Path]:
    """Write ``profile.json`` and ``profile.html`` (tables and histograms) into ``out``.

    Returns
    -------
    tuple of pathlib.Path
        ``(json_path, html_path)``.
    """
    html = render("profile.html", profile=profile, histograms=histogram_grid(profile))
    return (
        atomic_write_json(out / "profile.json", profile),
        atomic_write_text(out / "profile.html", html),
    )


#: Rows kept in a model's drift reference.
REFERENCE_ROWS = 5000


def drift_reference(
    frame: pd.DataFrame, columns: list[str], *, rows: int = REFERENCE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """A seeded sample of the training inputs: what drift checks compare new data with.

    Parameters
    ----------
    frame
        The training rows (canonical columns; ``timestamp`` gives the month).
    columns
        The model's inputs to keep (absent ones are left out).
    rows
        Most rows to keep; all of them when ``frame`` is smaller.
    seed
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        The sampled rows' inputs, their ``season`` and ``month`` (1-12, or missing), in the
        original row order.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"ta": [20.0, 25.0, 30.0], "timestamp": ["2012-07-01", None, None]})
    >>> drift_reference(frame, ["ta", "rh"], rows=2, seed=1).to_dict("list")
    {'ta': [20.0, 30.0], 'month': [7, None]}
    """
    kept = with_month(frame.sample(n=min(rows, len(frame)), random_state=seed).sort_index())
    return kept[[c for c in dict.fromkeys([*columns, "season", "month"]) if c in kept.columns]]
