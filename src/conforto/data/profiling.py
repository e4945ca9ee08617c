"""Per-column statistics and histograms: the reference later drift checks compare against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from conforto.data.bounds import PHYSICAL_BOUNDS
from conforto.data.categories import DOMAINS
from conforto.data.columns import NUMERIC
from conforto.data.load import fingerprint, with_month
from conforto.fileio import atomic_write_json, atomic_write_text
from conforto.reports import figure_uri, new_figure, render

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
_QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}


def _numeric_profile(values: pd.Series) -> dict[str, Any]:
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = x[np.isfinite(x)]
    stats: dict[str, Any] = {
        "kind": "numeric",
        "count": int(finite.size),
        "null_rate": float(1 - finite.size / max(len(x), 1)),
    }
    bounds = PHYSICAL_BOUNDS.get(str(values.name))
    stats["unit"] = bounds.unit if bounds else ""
    if finite.size == 0:
        stats.update(dict.fromkeys(("mean", "std", "min", "max", *_QUANTILES)))
        stats["hist"] = {"edges": [], "counts": []}
        return stats
    stats.update(
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite.min()),
        max=float(finite.max()),
    )
    stats.update(
        {
            k: float(v)
            for k, v in zip(_QUANTILES, np.quantile(finite, list(_QUANTILES.values())), strict=True)
        }
    )
    counts, edges = np.histogram(finite, bins=HIST_BINS)
    stats["hist"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return stats


def _categorical_profile(values: pd.Series) -> dict[str, Any]:
    counts = values.dropna().astype(str).value_counts()
    return {
        "kind": "categorical",
        "count": int(values.notna().sum()),
        "null_rate": float(values.isna().mean()),
        "n_unique": int(counts.size),
        "top": {str(k): int(v) for k, v in counts.head(TOP_VALUES).items()},
        "frequencies": {str(k): float(v) for k, v in (counts / max(counts.sum(), 1)).items()},
    }


def profile_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """Describe every measured numeric and every profiled categorical column.

    Parameters
    ----------
    frame
        Data with canonical columns.

    Returns
    -------
    dict
        ``{"n_rows", "sha256", "columns": {name: stats}}``; numeric stats hold count, null
        rate, mean, std, min, quantiles, max and a 30-bin histogram (``edges``, ``counts``);
        categorical stats hold value frequencies.
    """
    columns: dict[str, Any] = {}
    for name in frame.columns:
        if name in NUMERIC and name not in _IDENTIFIERS:
            columns[name] = _numeric_profile(frame[name])
        elif name in PROFILED_CATEGORICAL:
            columns[name] = _categorical_profile(frame[name])
    return {"n_rows": len(frame), "sha256": fingerprint(frame), "columns": columns}


def histogram_grid(profile: dict[str, Any], ncols: int = 5) -> str:
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


def write_profile(profile: dict[str, Any], out: Path) -> tuple[Path, Path]:
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
