"""The promotion gate: may a challenger replace the champion? It passes when (a) it beats PMV and
the majority class on building-grouped out-of-fold predictions by configured margins, (b) a
paired bootstrap over buildings shows it is not worse than the champion on the same rows and
folds (non-inferiority in macro-F1 and log loss), (c) no large slice (cooling type, climate,
season) regresses beyond a tolerance, (d) it passes the behavioural suite, (e) its prediction
sets cover the votes at their level, out of fold, (f) each occupant-response head beats its
physics baseline (:func:`conforto._lifecycle.gate_checks.head_checks`) and (g) site adaptation
makes no large bucket of earlier votes worse than zero-shot in the day-by-day replay
(:func:`conforto._lifecycle.gate_checks.adaptation_checks`). A first model: (a), (d)-(g).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from conforto._lifecycle.gate_checks import (
    Comparison,
    GateCheck,
    GateConfig,
    SliceDelta,
    baseline_checks,
    champion_checks,
    coverage_checks,
    slice_checks,
    summary,
)
from conforto.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from conforto._model.behaviour import BehaviourCheck

__all__ = ["GateCheck", "GateConfig", "GateReport", "run_gate"]


@dataclass
class GateReport:
    """Everything the gate decided, and why."""

    version: str
    champion: str | None
    oof_source: str
    checks: list[GateCheck]
    comparison: Comparison
    slices: list[SliceDelta] = field(default_factory=list)
    bootstrap: dict[str, list[float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    def compared(self) -> dict[str, dict[str, float]]:
        """Each compared scorer's figures by name: the model, the baselines, the champion."""
        return {name: dict(cast("Mapping[str, float]", m)) for name, m in self.comparison.items()}

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def reason(self) -> str:
        """One line naming every failed check and by how much (the ``rejected`` tag's value)."""
        return "; ".join(
            c.name
            if c.value is None or c.threshold is None
            else f"{c.name} ({c.value:+.3f}, limit {c.threshold:+.3f})"
            for c in self.failed
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``gate.json``)."""
        return {
            "version": self.version,
            "champion": self.champion,
            "passed": self.passed,
            "oof_source": self.oof_source,
            "checks": [asdict(c) for c in self.checks],
            "comparison": self.comparison,
            "slices": self.slices,
            "bootstrap_quantiles": {
                k: np.quantile(v, [0.025, 0.05, 0.5, 0.95, 0.975]).tolist()
                for k, v in self.bootstrap.items()
            },
        }


def run_gate(
    version: str,
    challenger: pd.DataFrame,
    behaviour: list[BehaviourCheck],
    config: GateConfig,
    *,
    champion: tuple[str, pd.DataFrame] | None = None,
    oof_source: str = "stored",
    conformal_by: str = "all",
    extra: Sequence[GateCheck] = (),
) -> GateReport:
    """Judge a challenger from its out-of-fold predictions (and the champion's, on the same rows).

    Parameters
    ----------
    version
        The challenger's registry version.
    challenger
        Its out-of-fold predictions.
    behaviour
        Its behavioural suite results (:func:`conforto._model.behaviour.behaviour_checks`).
    config
        Thresholds.
    champion
        ``(version, out-of-fold predictions on the same rows and folds)``; ``None`` for the
        first model, judged on the baselines and behaviour only.
    oof_source
        How the champion's predictions were obtained (``stored`` or ``refit``), for the report.
    conformal_by
        How the challenger's prediction sets are calibrated (``all``, ``class``, ``climate``).
    extra
        Further checks of the challenger (its occupant-response heads').

    Returns
    -------
    GateReport
        Every check with its measured value and threshold.
    """
    checks, comparison = baseline_checks(challenger, config)
    slices: list[SliceDelta] = []
    deltas: dict[str, np.ndarray] = {}
    if champion is not None:
        frame = champion[1]
        if len(frame) != len(challenger) or not np.array_equal(
            frame["y"].to_numpy(), challenger["y"].to_numpy()
        ):
            raise DataError(
                "the champion's out-of-fold predictions are not on the challenger's rows; "
                "refit them on the challenger's data and folds."
            )
        more, deltas = champion_checks(challenger, frame, config)
        checks += more
        more, slices = slice_checks(challenger, frame, config)
        checks += more
        comparison["champion"] = summary(frame)
    checks += coverage_checks(challenger, config, conformal_by=conformal_by)
    checks += [GateCheck(b.name, "behaviour", b.passed, b.detail) for b in behaviour]
    checks += extra
    return GateReport(
        version,
        champion[0] if champion else None,
        oof_source if champion else "none",
        checks,
        comparison,
        slices,
        {k: v.tolist() for k, v in deltas.items()},
    )
