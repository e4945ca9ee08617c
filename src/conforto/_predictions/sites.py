"""Site adaptation's rows as the service sees them, and the calls it makes to the log.

No database code: the service process never loads it (the log's writer process answers these
calls, :mod:`.writer`; the queries are :mod:`.adaptations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conforto._predictions.records import InputValue


@dataclass(frozen=True, slots=True)
class SiteVote:
    """A vote that counts for its site's adaptation, with the room it was asked about.

    Attributes
    ----------
    feedback_id
        The vote's id (they increase as votes arrive).
    created
        When the prediction was answered [s since the epoch].
    inputs
        The inputs of the prediction voted on, as sent: the model in service scores them
        again (an adaptation belongs to one model, and learns from votes on any's answers).
    thermal_sensation
        The occupant's vote on the 7-point scale.
    """

    feedback_id: int
    created: float
    inputs: Mapping[str, InputValue]
    thermal_sensation: float


@dataclass(frozen=True, slots=True)
class SiteState:
    """A state of a site's adaptation to a model version: ``state`` is the adjustment as JSON
    text, learned from ``votes`` votes up to the vote ``version``.
    """

    site: str
    version: int
    votes: int
    state: str


class AdaptationStore(Protocol):
    """Site adaptation's calls to the log (:class:`~.writer.LogProcess`; each raises
    :class:`~conforto.errors.LogUnavailable` when the database cannot be asked).
    """

    def stale_sites(self, model_version: str) -> dict[str, int]:
        """See :func:`stale_sites`."""

    def site_votes(self, site: str, up_to: int, per_client: int) -> list[SiteVote]:
        """See :func:`site_votes`."""

    def record_state(self, model_version: str, learned: SiteState) -> bool:
        """See :func:`record_state`; False when another instance recorded it first."""

    def site_states(self, model_version: str) -> list[SiteState]:
        """See :func:`current_states`."""
