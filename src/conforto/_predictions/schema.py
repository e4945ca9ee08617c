"""The prediction log's schema: its tables, the schema version and the migrations to it.

SQLite (the default, a file under ``CONFORTO_HOME``) and PostgreSQL (several instances writing
to one database) hold the same tables; :func:`migrate` creates them, or brings an older
database up to :data:`SCHEMA_VERSION` in place. This module reads and writes no rows
(:mod:`.store` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from conforto._predictions.records import OCCUPANT
from conforto.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable


#: The occupant responses, as the log stores them.
RESPONSE_FIELDS = (
    "p_dissatisfied",
    "p_unacceptable",
    "p_prefer_cooler",
    "p_prefer_no_change",
    "p_prefer_warmer",
)

#: The zero-shot answer of a prediction site adaptation adjusted.
ZERO_SHOT_FIELDS = ("zero_shot_cool", "zero_shot_neutral", "zero_shot_warm")

metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.String(32), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("predicted_class", sa.String(8), nullable=False),
    sa.Column("p_cool", sa.Float, nullable=False),
    sa.Column("p_neutral", sa.Float, nullable=False),
    sa.Column("p_warm", sa.Float, nullable=False),
    sa.Column("pmv", sa.Float),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("site", sa.String(100)),
    sa.Column("prediction_set", sa.String(24)),
    sa.Column("coverage", sa.Float),
    *(sa.Column(name, sa.Float) for name in RESPONSE_FIELDS),
    # who answered: null (production) or "canary" (a challenger)
    sa.Column("arm", sa.String(12)),
    # who asked (records.Kind): only occupants' rows count for the monitors and retraining
    sa.Column("kind", sa.String(12), nullable=False, server_default=OCCUPANT),
    # site adaptation: the zero-shot answer it adjusted, the votes it learned from and its
    # state's version (null: answered zero-shot)
    *(sa.Column(name, sa.Float) for name in ZERO_SHOT_FIELDS),
    sa.Column("adapted_votes", sa.Integer),
    sa.Column("adaptation_version", sa.BigInteger),
    sa.Column("zero_shot_class", sa.String(8)),
    sa.Column("zero_shot_dissatisfied", sa.Float),
)
#: A shadow challenger's answers, beside production's (same ``prediction_id``).
shadow = sa.Table(
    "shadow_predictions",
    metadata,
    sa.Column("prediction_id", sa.String(32), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    sa.Column("predicted_class", sa.String(8)),
    sa.Column("p_cool", sa.Float),
    sa.Column("p_neutral", sa.Float),
    sa.Column("p_warm", sa.Float),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.String(64)),
)
#: Challengers started, removed and stopped automatically, with the reason.
challenger_events = sa.Table(
    "challenger_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("event", sa.String(8), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False),
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(32), nullable=False, index=True),
    sa.Column("thermal_sensation", sa.Float, nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    # matched: its prediction is stored; pending: not yet (answered elsewhere, still spooled);
    # orphaned: still not, past the horizon
    sa.Column("status", sa.String(8), nullable=False, server_default="matched", index=True),
    # who sent it (X-Client-Id, else the address): what one client teaches a site is bounded
    sa.Column("client", sa.String(64)),
)
#: How far each spool segment has been stored, written in the same transaction as its rows:
#: a segment read again after a crash resumes there, so no row is stored twice.
spool_offsets = sa.Table(
    "spool_offsets",
    metadata,
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
#: Every state each site's adaptation has had, by model version: a new row each time votes
#: arrive (the audit trail); ``version`` is the last vote learned (``feedback_id``), ``state``
#: the adjustment as JSON text.
site_adaptations = sa.Table(
    "site_adaptations",
    metadata,
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("site", sa.String(100), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("votes", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)
schema = sa.Table("conforto_schema", metadata, sa.Column("version", sa.Integer, primary_key=True))

#: The schema this code writes. Bump it with a migration in :data:`MIGRATIONS`.
SCHEMA_VERSION = 8


def _add_site(conn: sa.Connection) -> None:
    """Version 2: ``predictions.site``, the building or site a caller named."""
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN site VARCHAR(100)"))


def _add_status(conn: sa.Connection) -> None:
    """Version 3: ``feedback.status`` (earlier votes were all matched); ``spool_offsets`` is
    new, made by ``create_all``.
    """
    conn.execute(
        sa.text("ALTER TABLE feedback ADD COLUMN status VARCHAR(8) NOT NULL DEFAULT 'matched'")
    )
    conn.execute(sa.text("CREATE INDEX ix_feedback_status ON feedback (status)"))


def _add_sets(conn: sa.Connection) -> None:
    """Version 4: ``predictions.prediction_set`` and its ``coverage`` (null before)."""
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN prediction_set VARCHAR(24)"))
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN coverage FLOAT"))


def _add_responses(conn: sa.Connection) -> None:
    """Version 5: the occupant responses, ``predictions.p_dissatisfied`` … (null before)."""
    for name in RESPONSE_FIELDS:
        conn.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} FLOAT"))


def _add_arm(conn: sa.Connection) -> None:
    """Version 6: ``predictions.arm`` (null before: production answered); the challenger's
    tables are new, made by ``create_all``.
    """
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN arm VARCHAR(12)"))


def _add_kind(conn: sa.Connection) -> None:
    """Version 7: ``predictions.kind`` (earlier rows count as occupants', as they did)."""
    conn.execute(
        sa.text("ALTER TABLE predictions ADD COLUMN kind VARCHAR(12) NOT NULL DEFAULT 'occupant'")
    )


def _add_adaptation(conn: sa.Connection) -> None:
    """Version 8: the zero-shot answer (``zero_shot_*``), ``adapted_votes`` and
    ``adaptation_version`` of predictions (null before: zero-shot), ``feedback.client``;
    ``site_adaptations`` is new, made by ``create_all``.
    """
    for name in ZERO_SHOT_FIELDS:
        conn.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} FLOAT"))
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN adapted_votes INTEGER"))
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN adaptation_version BIGINT"))
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN zero_shot_class VARCHAR(8)"))
    conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN zero_shot_dissatisfied FLOAT"))
    conn.execute(sa.text("ALTER TABLE feedback ADD COLUMN client VARCHAR(64)"))


#: ``MIGRATIONS[n]`` moves a database from version ``n`` to ``n + 1``.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    1: _add_site,
    2: _add_status,
    3: _add_sets,
    4: _add_responses,
    5: _add_arm,
    6: _add_kind,
    7: _add_adaptation,
}


def migrate(engine: sa.Engine) -> int:
    """Create the missing tables and bring an older schema up to :data:`SCHEMA_VERSION`.

    Returns
    -------
    int
        The schema version before migrating (0 for a new database).

    Raises
    ------
    ConfigError
        When the database was written by a newer conforto.
    """
    with engine.begin() as conn:
        metadata.create_all(conn)
        found = conn.execute(sa.select(sa.func.max(schema.c.version))).scalar()
        before = int(found or 0)
        if before > SCHEMA_VERSION:
            raise ConfigError(
                f"the prediction log {engine.url.render_as_string()} has schema version {before}, "
                f"newer than this conforto's {SCHEMA_VERSION}: upgrade conforto."
            )
        if before:  # a new database was just created in the latest schema
            for version in range(before, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
        if before < SCHEMA_VERSION:
            conn.execute(sa.delete(schema))
            conn.execute(sa.insert(schema).values(version=SCHEMA_VERSION))
    return before
