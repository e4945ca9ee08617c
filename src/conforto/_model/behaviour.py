"""Behavioural checks that any sensible thermal-sensation model passes.

They probe the model with rooms whose answer physics leaves in no doubt, so a model that learnt
something odd from its data (a leak, a shuffled column, a broken encoding) fails them even when
its metrics look fine. Used by the promotion gate and by the test suite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from conforto._data.target import CLASSES

if TYPE_CHECKING:
    from conforto._model.artifact import ThermalModel

#: Largest drop of P(warm) allowed when only the air temperature rises by 1 °C.
MONOTONIC_TOLERANCE = 0.05
#: Air temperatures of the monotonicity sweep [°C].
SWEEP_TA = np.arange(16.0, 34.0, 1.0)
#: A hot, humid, still room with heavy clothing: warm for anyone.
HOT_ROOM = {
    "ta": 32.0,
    "tr": 32.0,
    "rh": 80.0,
    "vel": 0.05,
    "met": 1.2,
    "clo": 1.0,
    "t_mot_isd": 28.0,
}
#: A cold room with light clothing: cool for anyone.
COLD_ROOM = {
    "ta": 16.0,
    "tr": 16.0,
    "rh": 40.0,
    "vel": 0.2,
    "met": 1.0,
    "clo": 0.3,
    "t_mot_isd": 10.0,
}


@dataclass(frozen=True)
class BehaviourCheck:
    """The outcome of one behavioural check."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def default_rooms() -> pd.DataFrame:
    """Ordinary office conditions to sweep: humidity × clothing × activity × outdoor climate."""
    grid = pd.MultiIndex.from_product(
        [[30.0, 50.0, 70.0], [0.5, 0.8, 1.1], [1.0, 1.2, 1.6], [5.0, 15.0, 25.0]],
        names=["rh", "clo", "met", "t_mot_isd"],
    )
    return grid.to_frame(index=False).assign(vel=0.1)


def warmer_never_less_warm(
    model: ThermalModel, rooms: pd.DataFrame | None = None, tolerance: float = MONOTONIC_TOLERANCE
) -> BehaviourCheck:
    """Raising the air (and radiant) temperature by 1 °C never lowers P(warm) by > ``tolerance``.

    Parameters
    ----------
    model
        The model to probe.
    rooms
        Conditions to sweep (any model inputs; ``ta``/``tr`` are overwritten); default
        :func:`default_rooms`.
    tolerance
        Largest allowed drop of P(warm) per 1 °C step [probability].
    """
    rooms = default_rooms() if rooms is None else rooms
    worst, at = 0.0, float(SWEEP_TA[0])
    previous = None
    for ta in SWEEP_TA:
        p_warm = model.predict_proba(rooms.assign(ta=ta, tr=ta))[:, 2]
        if previous is not None and (drop := float((previous - p_warm).max())) > worst:
            worst, at = drop, float(ta)
        previous = p_warm
    return BehaviourCheck(
        "warmer air never lowers P(warm)",
        worst <= tolerance,
        f"largest drop of P(warm) per +1 °C: {worst:.3f} (at ta = {at:.0f} °C; allowed "
        f"{tolerance:.2f}) over {len(rooms)} rooms × {len(SWEEP_TA)} temperatures",
    )


def _room_check(
    model: ThermalModel, name: str, room: dict[str, float], expected: int
) -> BehaviourCheck:
    proba = model.predict_proba(pd.DataFrame([room]))
    got = int(model.decide(proba)[0])
    shares = ", ".join(f"{c.value} {p:.2f}" for c, p in zip(CLASSES, proba[0], strict=True))
    return BehaviourCheck(
        name,
        got == expected,
        f"predicted {CLASSES[got].value} ({shares}); expected {CLASSES[expected].value}",
    )


def behaviour_checks(
    model: ThermalModel, rooms: pd.DataFrame | None = None
) -> list[BehaviourCheck]:
    """Run the whole behavioural suite.

    Parameters
    ----------
    model
        The model to probe.
    rooms
        Conditions for the monotonicity sweep (for example a sample of real votes); default
        :func:`default_rooms`.

    Returns
    -------
    list of BehaviourCheck
        Monotonicity in air temperature, a hot room predicted warm, a cold room predicted cool.
    """
    return [
        warmer_never_less_warm(model, rooms),
        _room_check(model, "hot, humid, still room with heavy clothing is warm", HOT_ROOM, 2),
        _room_check(model, "cold room with light clothing is cool", COLD_ROOM, 0),
    ]
