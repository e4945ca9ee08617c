"""Site adaptation in the service: production's answers for a site, adjusted by its occupants.

Every instance shares the adaptation through the prediction log: a thread of each learns the
votes that arrived (a site with votes newer than its state is fitted again and its new state
recorded; two instances learning the same votes record it once) and reads every site's
current state, every ``refresh_seconds``. Requests never wait for it: they read the states
the last pass left (:meth:`SiteAdaptations.adjust`). An adaptation belongs to one model
version: a new production starts from its own votes.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from conforto._adaptation.site import SiteAdjustment, Votes, fit_latest
from conforto._data.target import sensation_class
from conforto._predictions.adaptations import SiteState
from conforto._serving import telemetry
from conforto.errors import LogUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conforto._adaptation.site import AdaptationSettings
    from conforto._predictions.adaptations import AdaptationStore, SiteVote
    from conforto._settings import SiteAdaptationServeSettings

log = logging.getLogger(__name__)
SECONDS_A_DAY = 86_400.0


@dataclass(frozen=True)
class Learned:
    """The states one pass read: each site's adjustment of ``model_version``'s answers."""

    model_version: str | None = None
    sites: Mapping[str, tuple[SiteState, SiteAdjustment]] = field(default_factory=dict)


def votes_of(rows: Sequence[SiteVote]) -> Votes:
    """The adaptation's view of a site's votes (day: the UTC date of the prediction)."""
    zero_shot = np.array([v.zero_shot for v in rows], dtype=np.float64).reshape(len(rows), 3)
    return Votes(
        logp=np.log(np.clip(zero_shot, 1e-12, 1.0)),
        y=sensation_class([v.thermal_sensation for v in rows]).astype(np.int64),
        day=np.floor(np.array([v.created for v in rows], dtype=np.float64) / SECONDS_A_DAY),
        ta=np.array([np.nan if v.ta is None else v.ta for v in rows], dtype=np.float64),
        occupant=np.full(len(rows), None, dtype=object),
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
        self._model: tuple[str, AdaptationSettings] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conforto-adaptation", daemon=True)

    def start(self) -> SiteAdaptations:
        """Start learning in the background."""
        self._thread.start()
        return self

    def follow(self, model_version: str, settings: AdaptationSettings | None) -> None:
        """Adapt ``model_version``'s answers from now on (``settings``: what its training
        chose; ``None``, a model trained before site adaptation: answers stay zero-shot).
        """
        self._model = None if settings is None else (model_version, settings)
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
        version, settings = model
        recorded = 0
        for site, last in sorted(self.store.stale_sites(version).items()):
            votes = self.store.site_votes(version, site, last, self.settings.votes_per_client)
            adjustment = fit_latest(votes_of(votes), settings)
            state = SiteState(site, last, len(votes), adjustment.to_json())
            recorded += self.store.record_state(version, state)
        states = self.store.site_states(version)
        self.learned = Learned(
            version, {s.site: (s, SiteAdjustment.from_json(s.state)) for s in states}
        )
        telemetry.ADAPTATION_SITES.set(len(states))
        telemetry.ADAPTATION_VERSION.set(max((s.version for s in states), default=0))
        return recorded

    def adjust(
        self,
        model_version: str,
        proba: np.ndarray,
        sites: Sequence[str | None],
        ta: Sequence[float | None],
    ) -> tuple[np.ndarray, list[SiteState | None]]:
        """Rows' probabilities with their sites' adaptations, and the state each row had.

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
        """
        learned = self.learned
        applied: list[SiteState | None] = [None] * len(proba)
        if learned.model_version != model_version or not learned.sites:
            return proba, applied
        rows_of: dict[str, list[int]] = defaultdict(list)
        for i, site in enumerate(sites):
            if site is not None and site in learned.sites and site not in self.off:
                rows_of[site].append(i)
        if not rows_of:
            return proba, applied
        adapted = proba.copy()
        temperature = np.array([np.nan if t is None else t for t in ta], dtype=np.float64)
        for site, rows in rows_of.items():
            state, adjustment = learned.sites[site]
            logp = np.log(np.clip(proba[rows], 1e-12, 1.0))
            adapted[rows] = np.exp(adjustment.apply(logp, temperature[rows]))
            for i in rows:
                applied[i] = state
        return adapted, applied

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
