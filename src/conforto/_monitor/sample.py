"""What a drift check compares: each input's values with their weights, in bounded memory.

A :class:`Sample` holds, per numeric input, its distinct values (rounded to 1e-3 of their unit,
far below any instrument's resolution) with the number of rows that had each, and per
categorical input the rows per level. Memory grows with the number of distinct values, not
with the rows: a million logged predictions take the room of a few thousand numbers. The
Wasserstein distance on weighted distinct values equals the one on the rows themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._data.categories import normalise_value

FloatArray = npt.NDArray[np.float64]
#: Numeric values are kept to this many decimals.
DECIMALS = 3
#: Season of rows that do not say.
NO_SEASON = "(none)"


def _merge(
    values: FloatArray, weights: FloatArray, more: FloatArray, more_weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    distinct, where = np.unique(np.concatenate([values, more]), return_inverse=True)
    summed = np.bincount(where, np.concatenate([weights, more_weights]))
    return distinct.astype(np.float64), summed.astype(np.float64)


@dataclass
class Sample:
    """Weighted values of each input, and the seasons and months the rows came from.

    Attributes
    ----------
    numeric
        Per numeric input: ``(distinct values, weight of each)``.
    categorical
        Per categorical input: weight of each level.
    seasons, months
        Weight of the rows of each season (:data:`NO_SEASON` when not given) and month (1-12).
    support
        Per input, the sum of the weights of the rows that have a value, and of their squares
        (see :meth:`effective_rows`).
    rows
        Rows added.
    """

    numeric: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)
    categorical: dict[str, dict[str, float]] = field(default_factory=dict)
    seasons: dict[str, float] = field(default_factory=dict)
    months: dict[int, float] = field(default_factory=dict)
    support: dict[str, tuple[float, float]] = field(default_factory=dict)
    rows: int = 0

    def effective_rows(self, name: str) -> float:
        """Kish's effective sample size of an input's values: ``(Σw)² / Σw²``; the number of
        values when unweighted, fewer when a few rows weigh a lot.
        """
        total, squares = self.support.get(name, (0.0, 0.0))
        return total * total / squares if squares > 0 else 0.0

    def _support(self, name: str, w: FloatArray) -> None:
        total, squares = self.support.get(name, (0.0, 0.0))
        self.support[name] = (total + float(w.sum()), squares + float((w * w).sum()))

    def add(
        self,
        frame: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        weights: FloatArray | None = None,
    ) -> Sample:
        """Add rows (canonical columns; absent inputs count as missing) and return ``self``.

        Parameters
        ----------
        frame
            The rows, with ``season`` and ``month`` when known.
        numeric, categorical
            The inputs to keep.
        weights
            Weight of each row (default 1): a reference reweighted to another season mix.
        """
        w = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=np.float64)
        self.rows += len(frame)
        for name in numeric:
            if name not in frame.columns:
                continue
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)
            ok = np.isfinite(x)
            distinct, where = np.unique(np.round(x[ok], DECIMALS), return_inverse=True)
            counts = np.bincount(where, w[ok], minlength=distinct.size).astype(np.float64)
            old = self.numeric.get(name, (np.empty(0), np.empty(0)))
            self.numeric[name] = _merge(*old, distinct, counts)
            self._support(name, w[ok])
        for name in categorical:
            if name in frame.columns:
                values = frame[name].map(lambda v, n=name: normalise_value(n, v))
                _count(self.categorical.setdefault(name, {}), values, w)
                self._support(name, w[values.notna().to_numpy()])
        season = frame["season"] if "season" in frame.columns else pd.Series(None, frame.index)
        _count(self.seasons, season.map(lambda v: normalise_value("season", v)), w, NO_SEASON)
        if "month" in frame.columns:
            _count(self.months, frame["month"], w)
        return self


def _count(counts: dict[Any, float], values: pd.Series, w: FloatArray, missing: str = "") -> None:
    """Add each row's weight to its value's count (missing values only when ``missing``)."""
    labels = values.astype(object).where(values.notna(), missing or None)
    totals = pd.Series(w, index=labels.index).groupby(labels.to_numpy(), dropna=True).sum()
    for value, weight in totals.items():
        key = int(value) if isinstance(value, float | np.floating | np.integer) else value
        counts[key] = counts.get(key, 0.0) + float(weight)


def season_weights(reference: pd.DataFrame, current: Sample) -> tuple[FloatArray, str]:
    """Weights that give the reference the current window's season mix.

    Seasons are hemisphere-aware (a July vote in Brazil is winter): they are used whenever the
    window says its season; otherwise its months are (a coarser match across hemispheres).

    Returns
    -------
    tuple
        A weight per reference row (zero for seasons or months the window lacks), and what was
        matched (``"season"`` or ``"month"``).
    """
    given = {s: n for s, n in current.seasons.items() if s != NO_SEASON}
    wanted: dict[Any, float]
    if given and "season" in reference.columns:
        key = reference["season"].map(lambda v: normalise_value("season", v))
        wanted, by = given, "season"
    else:
        key = reference.get("month", pd.Series(pd.NA, index=reference.index)).astype("Int64")
        wanted, by = dict(current.months), "month"
    have = key.value_counts()
    total = sum(wanted.values()) or 1.0
    share = {k: n / total / have[k] for k, n in wanted.items() if k in have.index and have[k]}
    weights = key.map(share).fillna(0.0).to_numpy(np.float64) * len(reference)
    return np.asarray(weights, dtype=np.float64), by
