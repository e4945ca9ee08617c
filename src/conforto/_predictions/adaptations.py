"""Site adaptation's side of the prediction log: the votes that count, and each site's states.

A vote counts for a site's adaptation when it is matched to a prediction production answered
for an occupant (``kind`` ``occupant``, not a canary's, not the explorer's or a smoke test's)
naming that site, whichever model version answered (each version's adaptation scores the rooms
voted on again); of several votes on one prediction, the latest counts. Each state learned is
a new row of ``site_adaptations`` (never updated: the table is the audit trail of every
change); the current state of a site is its row of the highest ``version``, the id of the last
vote it learned. This module fits nothing: the service does
(:mod:`conforto._serving.adaptation`), through the writer process (:mod:`.sites` holds the
types it sees).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from conforto._predictions.records import OCCUPANT
from conforto._predictions.schema import feedback, predictions, site_adaptations
from conforto._predictions.sites import SiteState, SiteVote


def _counted() -> sa.ColumnElement[bool]:
    """Votes on answers production gave an occupant that named a site (any model version)."""
    return sa.and_(
        predictions.c.kind == OCCUPANT,
        predictions.c.arm.is_(None),
        predictions.c.site.is_not(None),
        feedback.c.status == "matched",
    )


_voted = feedback.join(predictions, predictions.c.prediction_id == feedback.c.prediction_id)


def stale_sites(conn: sa.Connection, model_version: str) -> dict[str, int]:
    """The sites with votes newer than their current state for ``model_version`` (every site
    with votes, for a version that has learned none), each with its newest vote's id.
    """
    newest = conn.execute(
        sa.select(predictions.c.site, sa.func.max(feedback.c.feedback_id))
        .select_from(_voted)
        .where(_counted())
        .group_by(predictions.c.site)
    )
    learned: dict[str, int] = dict(
        conn.execute(  # type: ignore[arg-type]
            sa.select(site_adaptations.c.site, sa.func.max(site_adaptations.c.version))
            .where(site_adaptations.c.model_version == model_version)
            .group_by(site_adaptations.c.site)
        ).all()
    )
    return {site: int(last) for site, last in newest if last > learned.get(site, 0)}


def site_votes(conn: sa.Connection, site: str, up_to: int, per_client: int) -> list[SiteVote]:
    """The votes that count for ``site`` up to the vote ``up_to``, oldest first: the latest of
    each prediction, and of each client at most its latest ``per_client`` (votes from before
    clients were kept are not bounded).
    """
    rows = conn.execute(
        sa.select(
            feedback.c.feedback_id,
            feedback.c.prediction_id,
            feedback.c.client,
            feedback.c.thermal_sensation,
            predictions.c.created,
            predictions.c.inputs,
        )
        .select_from(_voted)
        .where(_counted(), predictions.c.site == site)
        .where(feedback.c.feedback_id <= up_to)
        .order_by(feedback.c.feedback_id)
    )
    latest: dict[str, tuple[str | None, SiteVote]] = {}  # by prediction: its latest vote
    for vote_id, prediction_id, client, vote, created, inputs in rows:
        answered = _utc(created).timestamp()
        latest[prediction_id] = client, SiteVote(int(vote_id), answered, inputs, float(vote))
    kept: list[SiteVote] = []
    counted: Counter[str] = Counter()
    for client, vote in sorted(latest.values(), key=lambda v: -v[1].feedback_id):
        if client is not None:
            counted[client] += 1
            if counted[client] > per_client:
                continue
        kept.append(vote)
    return kept[::-1]


def record_state(conn: sa.Connection, model_version: str, learned: SiteState) -> None:
    """Add a state of a site's adaptation (raises ``IntegrityError`` when that version is
    recorded already: another instance learned the same votes first).
    """
    conn.execute(
        sa.insert(site_adaptations).values(
            model_version=model_version,
            site=learned.site,
            version=learned.version,
            votes=learned.votes,
            state=learned.state,
            created=datetime.now(UTC),
        )
    )


def current_states(conn: sa.Connection, model_version: str) -> list[SiteState]:
    """Each site's current state for ``model_version``."""
    latest = (
        sa.select(site_adaptations.c.site, sa.func.max(site_adaptations.c.version).label("last"))
        .where(site_adaptations.c.model_version == model_version)
        .group_by(site_adaptations.c.site)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            site_adaptations.c.site,
            site_adaptations.c.version,
            site_adaptations.c.votes,
            site_adaptations.c.state,
        )
        .join(
            latest,
            sa.and_(
                site_adaptations.c.site == latest.c.site,
                site_adaptations.c.version == latest.c.last,
            ),
        )
        .where(site_adaptations.c.model_version == model_version)
    )
    return [
        SiteState(site, int(version), int(votes), state) for site, version, votes, state in rows
    ]


@dataclass(frozen=True, slots=True)
class StateChange:
    """One row of the audit trail: a state a site's adaptation to a model version took, and
    when [UTC].
    """

    model_version: str
    created: datetime
    state: SiteState


def state_changes(
    conn: sa.Connection, *, model_version: str | None = None, site: str | None = None
) -> list[StateChange]:
    """Every state recorded (of one model version, one site, when given), oldest first."""
    query = sa.select(site_adaptations).order_by(
        site_adaptations.c.created, site_adaptations.c.version
    )
    if model_version is not None:
        query = query.where(site_adaptations.c.model_version == model_version)
    if site is not None:
        query = query.where(site_adaptations.c.site == site)
    return [
        StateChange(
            row.model_version,
            _utc(row.created),
            SiteState(row.site, int(row.version), int(row.votes), row.state),
        )
        for row in conn.execute(query)
    ]


def _utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
