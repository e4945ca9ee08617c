"""A site's adjustment of the model's log-probabilities, learned from its earlier votes.

For a row with the model's log-probabilities ``z`` (cool, neutral, warm), air temperature
``ta`` [°C] and occupant ``o``, the adapted log-probabilities are, renormalised,

.. code-block:: text

    z + a + b · (ta − ta₀) · (−1, 0, +1) + c[o]

``a`` is the site's offset of each class [nats], ``b`` its slope along the cool → warm direction
[nats/K] around the mean air temperature of its votes ``ta₀``, and ``c[o]`` the occupant's own
offset on top of the site's (zero for an occupant without votes, or a row that names none).
Each is the maximum a posteriori estimate of a multinomial logit that takes the model's answer
as its offset, under a Gaussian prior centred on zero, that is on the general model: the prior's
precision is the ``strength`` [votes] for ``a``, ``slope_ratio`` times it for ``b`` [votes·K²]
and ``occupant_ratio`` times it for ``c``. A vote's weight halves every ``half_life_days`` of
its age (seasons change), and the adjustment of one row is clipped at ± ``cap`` nats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conforto._data.target import sensation_class, sensation_vote

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]

#: The cool → warm direction of the sensation scale, in class order.
WARMER: FloatArray = np.array([-1.0, 0.0, 1.0])
#: One direction per class: the site's offset ``a`` is free in each (the prior keeps it centred).
CLASS_DIRECTIONS: FloatArray = np.eye(3)
#: Probabilities are clipped at this before their logarithm (an answer of 0 stays finite).
SMALLEST = 1e-12
#: Newton steps stop when no parameter moves more than this [nats, nats/K].
TOLERANCE = 1e-8
MAX_STEPS = 25


class AdaptationSettings(BaseModel):
    """How a site's votes adjust the model's answers (stored with the model that made them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strength: float = Field(
        5.0,
        gt=0,
        description="Precision of the prior on a site's offsets [votes]: with this many votes "
        "of a site, its offsets go about half way to what its votes alone say.",
    )
    slope_ratio: float | None = Field(
        6.0,
        gt=0,
        description="Precision of the temperature slope, over the strength [K²]; null: no slope.",
    )
    occupant_ratio: float | None = Field(
        0.2,
        gt=0,
        description="Precision of an occupant's offsets, over the strength; null: "
        "no occupant level.",
    )
    cap: float = Field(3.0, gt=0, description="Largest change of a log-probability [nats].")
    half_life_days: float | None = Field(
        30.0, gt=0, description="Age at which a vote counts half [days]; null: votes never fade."
    )


@dataclass(frozen=True)
class Votes:
    """Labelled rows as the adaptation reads them (one site's, or several sites' in a replay).

    Parameters
    ----------
    logp
        The model's log-probabilities of each row (rows × 3: cool, neutral, warm) [nats].
    y
        The vote's class index (0 cool, 1 neutral, 2 warm); −1 for a row without a vote (it
        is answered, and teaches nothing).
    day
        The vote's day: whole days since 1970-01-01 UTC, NaN where undated.
    ta
        Air temperature [°C], NaN where unknown (the slope then ignores the row).
    occupant
        Who voted (any hashable id), ``None`` where unknown.
    dissatisfied
        Whether the vote says dissatisfied (1: ±2 or ±3, else 0; −1 without a vote); ``None``
        when the model has no dissatisfied head (then ``p_dissatisfied`` is too).
    p_dissatisfied
        The dissatisfied head's probability of each row (NaN where it gave none).
    """

    logp: FloatArray
    y: IntArray
    day: FloatArray
    ta: FloatArray
    occupant: ObjectArray
    dissatisfied: IntArray | None = None
    p_dissatisfied: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.y)
        head = [a for a in (self.dissatisfied, self.p_dissatisfied) if a is not None]
        if (
            self.logp.shape != (n, 3)
            or not all(len(a) == n for a in (self.day, self.ta, self.occupant, *head))
            or len(head) == 1
        ):
            raise ValueError(
                f"votes need one row each: logp {self.logp.shape}, y {n}, day {len(self.day)}, "
                f"ta {len(self.ta)}, occupant {len(self.occupant)}, dissatisfied "
                f"{[len(a) for a in head]} (both or neither)"
            )

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def join(cls, *parts: Votes) -> Votes:
        """The rows of ``parts``, one after the other (the head's answers if all have them)."""
        head = all(p.dissatisfied is not None for p in parts)
        return cls(
            np.vstack([p.logp for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.day for p in parts]),
            np.concatenate([p.ta for p in parts]),
            np.concatenate([p.occupant for p in parts]),
            np.concatenate([p.dissatisfied for p in parts]) if head else None,
            np.concatenate([p.p_dissatisfied for p in parts]) if head else None,
        )

    def take(self, rows: IntArray) -> Votes:
        """The votes of ``rows`` (indices)."""
        return Votes(
            self.logp[rows],
            self.y[rows],
            self.day[rows],
            self.ta[rows],
            self.occupant[rows],
            None if self.dissatisfied is None else self.dissatisfied[rows],
            None if self.p_dissatisfied is None else self.p_dissatisfied[rows],
        )


class AdjustmentState(BaseModel):
    """A site's adjustment as JSON (:meth:`SiteAdjustment.to_json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offset: tuple[float, float, float]
    slope: float
    reference_ta: float
    cap: float = Field(gt=0)
    votes: int = Field(ge=0)
    dissatisfied: float = 0.0


@dataclass(frozen=True)
class SiteAdjustment:
    """What a site's earlier votes teach: offsets [nats], slope [nats/K], occupants' offsets,
    and the offset of the dissatisfied head's logit [nats].
    """

    offset: FloatArray
    slope: float
    reference_ta: float
    cap: float
    votes: int
    occupants: Mapping[object, FloatArray] = field(default_factory=dict)
    dissatisfied: float = 0.0

    @classmethod
    def none(cls, cap: float = 3.0) -> SiteAdjustment:
        """No adjustment: the zero-shot answer."""
        return cls(np.zeros(3), 0.0, 0.0, cap, 0)

    def to_json(self) -> str:
        """The adjustment as JSON text, as the prediction log keeps a site's state (without
        occupants' offsets: a service's requests name no occupant).
        """
        offset = (float(self.offset[0]), float(self.offset[1]), float(self.offset[2]))
        state = AdjustmentState(
            offset=offset,
            slope=self.slope,
            reference_ta=self.reference_ta,
            cap=self.cap,
            votes=self.votes,
            dissatisfied=self.dissatisfied,
        )
        return state.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> SiteAdjustment:
        """The adjustment :meth:`to_json` wrote.

        Raises
        ------
        ValueError
            When ``text`` is not such a state.
        """
        try:
            state = AdjustmentState.model_validate_json(text)
        except ValidationError as exc:
            raise ValueError(f"not a site adjustment's state: {exc}") from None
        offset = np.asarray(state.offset, dtype=np.float64)
        return cls(
            offset,
            state.slope,
            state.reference_ta,
            state.cap,
            state.votes,
            dissatisfied=state.dissatisfied,
        )

    def shift(self, ta: FloatArray, occupant: ObjectArray | None = None) -> FloatArray:
        """Each row's change of log-probabilities [nats] (rows × 3, centred, clipped)."""
        personal = None
        if occupant is not None and self.occupants:
            zero = np.zeros(3)
            personal = np.stack([self.occupants.get(o, zero) for o in occupant])
        return shifts(self.offset, self.slope, self.reference_ta, self.cap, ta, personal)

    def apply(
        self, logp: FloatArray, ta: FloatArray, occupant: ObjectArray | None = None
    ) -> FloatArray:
        """Adapted log-probabilities of rows (rows × 3) [nats], renormalised.

        Examples
        --------
        >>> same = SiteAdjustment.none().apply(np.log([[0.2, 0.5, 0.3]]), np.array([24.0]))
        >>> np.exp(same).round(3).tolist()
        [[0.2, 0.5, 0.3]]
        """
        if self.votes == 0:
            return logp
        return log_normalise(logp + self.shift(ta, occupant))

    def apply_dissatisfied(self, p: FloatArray) -> FloatArray:
        """The dissatisfied head's adapted probabilities of rows (NaN stays NaN)."""
        if self.votes == 0 or self.dissatisfied == 0.0:
            return p
        return shift_dissatisfied(p, self.dissatisfied, self.cap)


def shift_dissatisfied(
    p: FloatArray, offset: FloatArray | float, cap: FloatArray | float
) -> FloatArray:
    """The dissatisfied head's probabilities with ``offset`` added to their logit [nats],
    clipped at ± ``cap`` (one offset for all rows, or one per row).

    Examples
    --------
    >>> shift_dissatisfied(np.array([0.5, 0.2]), np.log(3.0), 3.0).round(3).tolist()
    [0.75, 0.429]
    """
    logit = np.log(np.clip(p, SMALLEST, 1.0)) - np.log(np.clip(1.0 - p, SMALLEST, 1.0))
    shifted = logit + np.clip(offset, -np.asarray(cap), np.asarray(cap))
    return np.asarray(1.0 / (1.0 + np.exp(-shifted)), dtype=np.float64)


def shifts(
    offset: FloatArray,
    slope: FloatArray | float,
    reference_ta: FloatArray | float,
    cap: FloatArray | float,
    ta: FloatArray,
    personal: FloatArray | None = None,
) -> FloatArray:
    """Rows' changes of log-probabilities [nats] (rows × 3, centred, clipped), each row with
    its own site's parameters (``offset`` rows × 3, the others one per row) or all with one
    site's (``offset`` of 3, scalars); ``personal``: occupants' offsets on top (rows × 3).

    Examples
    --------
    >>> shifts(np.array([[0.0, 0, 1], [1, 0, 0]]), np.zeros(2), np.zeros(2), np.array([3, 0.1]),
    ...        np.array([20.0, 20.0])).round(2).tolist()
    [[-0.33, -0.33, 0.67], [0.1, -0.1, -0.1]]
    """
    temperature = np.nan_to_num(np.asarray(ta, dtype=np.float64) - reference_ta)
    change = offset + (slope * temperature)[:, None] * WARMER
    if personal is not None:
        change = change + personal
    change = change - change.mean(axis=1, keepdims=True)
    bound = np.asarray(cap, dtype=np.float64)
    bound = bound[:, None] if bound.ndim else bound
    return np.asarray(np.clip(change, -bound, bound), dtype=np.float64)


def log_normalise(z: FloatArray) -> FloatArray:
    """Log-probabilities from unnormalised log-probabilities (rows × classes)."""
    top = z.max(axis=1, keepdims=True)
    return np.asarray(z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True)))


def map_offsets(
    z: FloatArray, y: IntArray, weights: FloatArray, design: FloatArray, precision: FloatArray
) -> FloatArray:
    """The maximum a posteriori coefficients of a multinomial logit with offset ``z``.

    Row ``i``'s log-probabilities are ``z[i] + Σₜ θₜ · design[t, i]``; the prior on ``θ`` is
    Gaussian, centred on zero, with precision ``precision`` (one per coefficient). Newton's
    method: the objective is strictly concave, so a few steps converge.

    Parameters
    ----------
    z
        Offsets: the model's log-probabilities (rows × classes) [nats].
    y
        Class indices.
    weights
        Each row's weight (its age's fading).
    design
        Coefficients × rows × 3: each coefficient's effect on each row's log-probabilities.
    precision
        The prior's precision of each coefficient (> 0).

    Returns
    -------
    numpy.ndarray
        ``θ``, one per coefficient.
    """
    theta = np.zeros(len(precision))
    target = np.eye(z.shape[1])[y]
    for _ in range(MAX_STEPS):
        p = np.exp(log_normalise(z + np.tensordot(theta, design, axes=1)))
        gradient = np.einsum("tij,ij->t", design, (p - target) * weights[:, None])
        gradient += precision * theta
        pd = p[None] * design
        along = pd.sum(axis=2)
        hessian = np.einsum("i,tij,uij->tu", weights, pd, design)
        hessian -= np.einsum("i,ti,ui->tu", weights, along, along)
        step = np.linalg.solve(hessian + np.diag(precision), gradient)
        theta -= step
        if np.abs(step).max() < TOLERANCE:
            break
    return theta


def fit_site(
    votes: Votes,
    settings: AdaptationSettings,
    *,
    day: float,
    occupants: Collection[object] | None = None,
) -> SiteAdjustment:
    """What a site's votes of the days before ``day`` teach about its occupants.

    Parameters
    ----------
    votes
        The site's votes (any day: those of ``day`` and later are left out, undated ones and
        rows without a vote too).
    settings
        Strength, cap, fading and the terms to fit.
    day
        The day answered, in days since 1970-01-01 UTC.
    occupants
        The occupants to learn offsets for (default: every occupant who voted).

    Returns
    -------
    SiteAdjustment
        :meth:`SiteAdjustment.none` when no earlier vote is dated.
    """
    earlier = np.flatnonzero((votes.day < day) & (votes.y >= 0))
    if earlier.size == 0:
        return SiteAdjustment.none(settings.cap)
    votes = votes.take(earlier)
    age = day - votes.day
    weights = (
        np.ones(len(votes))
        if settings.half_life_days is None
        else np.exp2(-age / settings.half_life_days)
    )
    known = ~np.isnan(votes.ta)
    reference = float(np.average(votes.ta[known], weights=weights[known])) if known.any() else 0.0
    n = len(votes)
    terms = [np.broadcast_to(d, (n, 3)) for d in CLASS_DIRECTIONS]
    precision = [settings.strength] * 3
    if settings.slope_ratio is not None:
        terms.append(np.nan_to_num(votes.ta - reference)[:, None] * WARMER)
        precision.append(settings.strength * settings.slope_ratio)
    design = np.stack(terms)
    theta = map_offsets(votes.logp, votes.y, weights, design, np.asarray(precision))
    offset = theta[:3] - theta[:3].mean()
    slope = float(theta[3]) if settings.slope_ratio is not None else 0.0
    learned = {}
    if settings.occupant_ratio is not None:
        site_logp = votes.logp + np.tensordot(theta, design, axes=1)
        strength = settings.strength * settings.occupant_ratio
        learned = _occupants(votes, site_logp, weights, strength, occupants)
    dissatisfied = _dissatisfied(votes, weights, settings.strength)
    return SiteAdjustment(offset, slope, reference, settings.cap, n, learned, dissatisfied)


def _dissatisfied(votes: Votes, weights: FloatArray, strength: float) -> float:
    """The offset of the dissatisfied head's logit the votes teach [nats], under a prior of
    precision ``strength`` [votes]; 0 without the head's answers.
    """
    if votes.dissatisfied is None or votes.p_dissatisfied is None:
        return 0.0
    rows = np.flatnonzero((votes.dissatisfied >= 0) & ~np.isnan(votes.p_dissatisfied))
    if rows.size == 0:
        return 0.0
    p = np.clip(votes.p_dissatisfied[rows], SMALLEST, 1.0 - SMALLEST)
    z = np.log(np.column_stack([1.0 - p, p]))
    design = np.broadcast_to(np.array([0.0, 1.0]), (1, rows.size, 2))
    theta = map_offsets(z, votes.dissatisfied[rows], weights[rows], design, np.array([strength]))
    return float(theta[0])


def vote_labels(thermal_sensation: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Votes on the 7-point scale as the model learns them: each one's class (0 cool,
    1 neutral, 2 warm) and whether it says dissatisfied (±2 or ±3 once rounded), −1 each
    where there is no vote.

    Examples
    --------
    >>> [a.tolist() for a in vote_labels([-2.6, 0.5, 1.5, float("nan")])]
    [[0, 1, 2, -1], [1, 0, 1, -1]]
    """
    classes = sensation_class(thermal_sensation)
    missing = np.isnan(classes)
    upset = np.abs(sensation_vote(thermal_sensation)) >= 2
    return (
        np.where(missing, -1, classes).astype(np.int64),
        np.where(missing, -1, upset).astype(np.int64),
    )


def fit_latest(votes: Votes, settings: AdaptationSettings) -> SiteAdjustment:
    """What all of a site's dated votes teach the answers after them (a service's state).

    The votes fade from the day after the latest one's, so a state depends on its votes alone
    and every instance that learns them learns the same; requests name no occupant, so no
    occupant's offsets are learned.
    """
    dated = votes.day[~np.isnan(votes.day) & (votes.y >= 0)]
    if dated.size == 0:
        return SiteAdjustment.none(settings.cap)
    return fit_site(votes, settings, day=float(dated.max()) + 1.0, occupants=())


def _occupants(
    votes: Votes,
    site_logp: FloatArray,
    weights: FloatArray,
    strength: float,
    wanted: Collection[object] | None,
) -> dict[object, FloatArray]:
    """The offsets of each occupant ``wanted`` who voted, on top of the site's adjustment
    [nats], under a prior of precision ``strength`` [votes].
    """
    precision = np.full(3, strength)
    found = {}
    named = np.flatnonzero(np.array([o is not None for o in votes.occupant], dtype=bool))
    voted = dict.fromkeys(votes.occupant[named])
    for occupant in voted if wanted is None else [o for o in wanted if o in voted]:
        mine = named[votes.occupant[named] == occupant]
        design = np.broadcast_to(CLASS_DIRECTIONS[:, None, :], (3, mine.size, 3))
        theta = map_offsets(site_logp[mine], votes.y[mine], weights[mine], design, precision)
        found[occupant] = theta - theta.mean()
    return found
