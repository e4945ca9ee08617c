"""Site adaptation in the service: production's answers for a site, adjusted by its occupants.

Every instance shares the adaptation through the prediction log: a thread of each learns the
votes that arrived (a site with votes newer than its state is fitted again, from the model's
answers to every room its occupants voted on, and its new state recorded; two instances
learning the same votes record it once) and reads every site's current state, every
``refresh_seconds``. Requests never wait for it: they read the states
the last pass left (:meth:`SiteAdaptations.adjust`). An adaptation belongs to one model
version: a new production learns every site again from all the votes, with its own answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from conforto._adaptation.site import (
    SMALLEST,
    SiteAdjustment,
    Votes,
    fit_latest,
    log_normalise,
    shift_dissatisfied,
    shifts,
    vote_labels,
)
from conforto._predictions.sites import SiteState
from conforto._serving import telemetry
from conforto.errors import LogUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conforto._adaptation.site import AdaptationSettings
    from conforto._model.inputs import Observation
    from conforto._predictions.sites import AdaptationStore, SiteVote
    from conforto._settings import SiteAdaptationServeSettings

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
#: The model in service answering rooms: its probabilities (rows × 3) and P(dissatisfied)
#: (``None`` without heads).
Scorer = Callable[[Sequence["Observation"]], tuple[FloatArray, "FloatArray | None"]]
SECONDS_A_DAY = 86_400.0


@dataclass(frozen=True)
class Learned:
    """The states one pass read: each site's adjustment of ``model_version``'s answers, its
    parameters stacked one row a site (``index``: the site's row) so that a batch of many
    sites is adjusted in one go.
    """

    model_version: str | None = None
    sites: Mapping[str, SiteState] = field(default_factory=dict)
    index: Mapping[str, int] = field(default_factory=dict)
    offset: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    slope: FloatArray = field(default_factory=lambda: np.zeros(0))
    reference_ta: FloatArray = field(default_factory=lambda: np.zeros(0))
    cap: FloatArray = field(default_factory=lambda: np.zeros(0))
    dissatisfied: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, model_version: str, states: Sequence[SiteState]) -> Learned:
        """The states' adjustments (each state's JSON read once, here)."""
        learned = [SiteAdjustment.from_json(s.state) for s in states]
        return cls(
            model_version,
            {s.site: s for s in states},
            {s.site: i for i, s in enumerate(states)},
            np.array([a.offset for a in learned], dtype=np.float64).reshape(len(states), 3),
            np.array([a.slope for a in learned], dtype=np.float64),
            np.array([a.reference_ta for a in learned], dtype=np.float64),
            np.array([a.cap for a in learned], dtype=np.float64),
            np.array([a.dissatisfied for a in learned], dtype=np.float64),
        )


def votes_of(rows: Sequence[SiteVote], proba: FloatArray, dissatisfied: FloatArray | None) -> Votes:
    """The adaptation's view of a site's votes, with the model's answers to their rooms (day:
    the UTC date of the prediction voted on).
    """
    classes, upset = vote_labels([v.thermal_sensation for v in rows])
    ta = [v.inputs.get("ta") for v in rows]
    return Votes(
        logp=np.log(np.clip(proba, SMALLEST, 1.0)),
        y=classes,
        day=np.floor(np.array([v.created for v in rows], dtype=np.float64) / SECONDS_A_DAY),
        ta=np.array([t if isinstance(t, float | int) else np.nan for t in ta], dtype=np.float64),
        occupant=np.full(len(rows), None, dtype=object),
        dissatisfied=None if dissatisfied is None else upset,
        p_dissatisfied=dissatisfied,
    )


class SiteAdaptations:
    """Each site's adaptation of the model in service, kept in step with the prediction log.

    Parameters
    ----------
    store
        The prediction log's database side.
    settings
        Refresh interval and the sites switched off.
    """

    def __init__(self, store: AdaptationStore, settings: SiteAdaptationServeSettings) -> None:
        self.store = store
        self.settings = settings
        self.off = frozenset(settings.off)
        self.learned = Learned()
        self._model: tuple[str, AdaptationSettings, Scorer] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conforto-adaptation", daemon=True)

    def start(self) -> SiteAdaptations:
        """Start learning in the background."""
        self._thread.start()
        return self

    def follow(
        self, model_version: str, settings: AdaptationSettings | None, score: Scorer
    ) -> None:
        """Adapt ``model_version``'s answers from now on (``settings``: what its training
        chose; ``None``, a model trained before site adaptation: answers stay zero-shot);
        ``score`` answers the rooms voted on with that model (votes on an earlier version's
        answers teach it too).
        """
        self._model = None if settings is None else (model_version, settings, score)
        if self.learned.model_version != model_version:
            self.learned = Learned()
        self._wake.set()

    def refresh(self) -> int:
        """Learn the votes that arrived and read every site's state: one pass.

        Returns
        -------
        int
            Sites whose state this pass recorded.

        Raises
        ------
        LogUnavailable
            When the prediction log cannot be asked (the states read last stay in use).
        """
        model = self._model
        if model is None:
            return 0
        version, settings, score = model
        recorded = 0
        for site, last in sorted(self.store.stale_sites(version).items()):
            votes = self.store.site_votes(site, last, self.settings.votes_per_client)
            proba, dissatisfied = score([dict(v.inputs) for v in votes])
            adjustment = fit_latest(votes_of(votes, proba, dissatisfied), settings)
            state = SiteState(site, last, len(votes), adjustment.to_json())
            recorded += self.store.record_state(version, state)
        states = self.store.site_states(version)
        self.learned = Learned.of(version, states)
        telemetry.ADAPTATION_SITES.set(len(states))
        telemetry.ADAPTATION_VERSION.set(max((s.version for s in states), default=0))
        return recorded

    def adjust(
        self,
        model_version: str,
        proba: FloatArray,
        sites: Sequence[str | None],
        ta: Sequence[float | None],
        dissatisfied: FloatArray | None = None,
    ) -> tuple[FloatArray, FloatArray | None, list[SiteState | None]]:
        """Rows' answers with their sites' adaptations, and the state each row had.

        Parameters
        ----------
        model_version
            The version that answered (another version's states do not apply).
        proba
            The model's probabilities (rows × 3).
        sites
            Each row's site, ``None`` where it names none.
        ta
            Each row's air temperature [°C], ``None`` where not given.
        dissatisfied
            The model's P(dissatisfied) of each row (NaN where none), without heads ``None``.

        Returns
        -------
        tuple
            The probabilities, P(dissatisfied) and each row's state (``None``: zero-shot).
        """
        learned = self.learned
        applied: list[SiteState | None] = [None] * len(proba)
        if learned.model_version != model_version or not learned.sites:
            return proba, dissatisfied, applied
        rows, at = [], []
        for i, site in enumerate(sites):
            k = learned.index.get(site) if site is not None and site not in self.off else None
            if k is not None:
                rows.append(i)
                at.append(k)
                applied[i] = learned.sites[site]  # type: ignore[index]
        if not rows:
            return proba, dissatisfied, applied
        temperature = np.array([np.nan if ta[i] is None else ta[i] for i in rows], dtype=float)
        cap = learned.cap[at]
        change = shifts(
            learned.offset[at], learned.slope[at], learned.reference_ta[at], cap, temperature
        )
        adapted = proba.copy()
        logp = np.log(np.clip(proba[rows], SMALLEST, 1.0))
        adapted[rows] = np.exp(log_normalise(logp + change))
        if dissatisfied is not None:
            dissatisfied = dissatisfied.copy()
            head = learned.dissatisfied[at]
            dissatisfied[rows] = shift_dissatisfied(dissatisfied[rows], head, cap)
        return adapted, dissatisfied, applied

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                recorded = self.refresh()
                if recorded:
                    log.info("site adaptation: %d site(s) learned new votes", recorded)
            except LogUnavailable as exc:
                log.warning("site adaptation: the prediction log cannot be asked: %s", exc)
            except Exception:  # a bug must not end the thread: the next pass tries again
                log.exception("site adaptation: a pass failed; retrying")
            self._wake.wait(self.settings.refresh_seconds)
            self._wake.clear()

    def close(self) -> None:
        """Stop learning."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
