"""Site adaptation on the prediction log (SQLite and PostgreSQL): the votes that count, the
states recorded (every change kept), and instances that learn the same from the same votes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa

from conforto._adaptation.site import AdaptationSettings, SiteAdjustment
from conforto._predictions.answer import Adaptation, Probabilities
from conforto._predictions.records import PredictionRow, VoteRow
from conforto._predictions.schema import predictions, site_adaptations
from conforto._predictions.store import LogDatabase
from conforto._predictions.writer import LogProcess
from conforto._serving.adaptation import SiteAdaptations
from conforto._settings import SiteAdaptationServeSettings
from tests.factories import answer, table_rows

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from conforto._model.inputs import Observation
    from conforto._predictions.records import Kind

pytestmark = pytest.mark.integration

VERSION = "3"
LEARN = AdaptationSettings(strength=2.0)
FloatArray = npt.NDArray[np.float64]
HOT_DAY = 20_000 * 86_400.0  # a day in 2024 [s since the epoch]


def _answered(
    site: str | None,
    *,
    kind: Kind = "occupant",
    arm: str | None = None,
    version: str = VERSION,
    when: float = HOT_DAY,
    adaptation: Adaptation | None = None,
) -> PredictionRow:
    prediction = answer("neutral", model_version=version, adaptation=adaptation, dissatisfied=0.2)
    return PredictionRow.of(prediction, {"ta": 26.0}, 1.0, site, now=when, arm=arm, kind=kind)


def _voted(database: LogDatabase, rows: list[PredictionRow], vote: float = 3.0) -> None:
    database.write(rows)
    database.write([VoteRow(r.prediction_id, vote, time.time()) for r in rows])


def _scored(rooms: Sequence[Observation]) -> tuple[FloatArray, FloatArray]:
    """A model that answers every room (0.1, 0.3, 0.6), P(dissatisfied) 0.2."""
    return np.tile([0.1, 0.3, 0.6], (len(rooms), 1)), np.full(len(rooms), 0.2)


@pytest.fixture
def learner(log_url: str) -> Iterator[Callable[..., SiteAdaptations]]:
    """Make learners of ``VERSION`` on the log (each with its own connections, as instances)."""
    opened: list[LogDatabase] = []

    def make(**settings: Any) -> SiteAdaptations:
        opened.append(LogDatabase(log_url))
        made = SiteAdaptations(opened[-1], SiteAdaptationServeSettings(**settings))
        made.follow(VERSION, LEARN, _scored)
        return made

    yield make
    for database in opened:
        database.close()


def test_only_occupants_votes_on_production_answers_for_a_site_count(log_url: str) -> None:
    database = LogDatabase(log_url)
    counted = [_answered("A") for _ in range(3)]
    _voted(database, counted)
    _voted(
        database,
        [
            _answered(None),
            _answered("A", kind="explorer"),
            _answered("A", kind="smoke"),
            _answered("A", arm="canary"),
        ],
    )
    counted.append(_answered("A", version="2"))  # an earlier version's answer teaches too
    _voted(database, counted[-1:])
    database.write([VoteRow(counted[0].prediction_id, -3.0, time.time())])  # changed their mind
    stale = database.stale_sites(VERSION)
    assert list(stale) == ["A"]
    votes = database.site_votes("A", stale["A"], per_client=100)
    assert sorted(v.thermal_sensation for v in votes) == [-3.0, 3.0, 3.0, 3.0]  # the latest each
    assert all(v.inputs == {"ta": 26.0} for v in votes)  # the rooms, for the model to score
    assert stale == database.stale_sites("9")  # a new version learns from every vote
    database.close()


def test_one_client_teaches_a_site_at_most_its_latest_votes(log_url: str) -> None:
    database = LogDatabase(log_url)
    rows = [_answered("A") for _ in range(9)]
    database.write(rows)
    senders = ["x"] * 5 + ["y"] * 2 + [None] * 2  # None: stored before clients were kept
    database.write(
        [
            VoteRow(r.prediction_id, float(k), time.time(), sender)
            for k, (r, sender) in enumerate(zip(rows, senders, strict=True))
        ]
    )
    votes = database.site_votes("A", 10**9, per_client=3)
    assert [v.thermal_sensation for v in votes] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    database.close()


def test_a_state_is_recorded_once_and_every_change_is_kept(
    log_url: str, learner: Callable[..., SiteAdaptations]
) -> None:
    database = LogDatabase(log_url)
    _voted(database, [_answered("A") for _ in range(20)])
    first, second = learner(), learner()
    assert first.refresh() == 1
    assert second.refresh() == 0  # the same votes: learned already, read back
    assert database.stale_sites(VERSION) == {}
    assert first.learned.sites.keys() == second.learned.sites.keys() == {"A"}
    state = second.learned.sites["A"]
    adjustment = SiteAdjustment.from_json(state.state)
    assert state.votes == 20
    assert adjustment.offset[2] > adjustment.offset[0]  # hot votes: warmer answers
    assert second.learned.offset.tolist() == [adjustment.offset.tolist()]  # stacked, by site

    _voted(database, [_answered("A") for _ in range(5)], vote=-3.0)
    assert second.refresh() == 1
    audit = table_rows(log_url, site_adaptations)
    assert [r["votes"] for r in sorted(audit, key=lambda r: r["version"])] == [20, 25]
    assert first.refresh() == 0
    assert first.learned.sites["A"] == second.learned.sites["A"]
    database.close()


def test_answers_for_a_site_are_adjusted_by_its_state_unless_switched_off(
    log_url: str, learner: Callable[..., SiteAdaptations]
) -> None:
    database = LogDatabase(log_url)
    _voted(database, [_answered("A") for _ in range(30)])
    _voted(database, [_answered("B") for _ in range(30)])
    adaptations = learner(off=["B"])
    adaptations.refresh()
    proba = np.array([[0.2, 0.6, 0.2]] * 4)
    upset = np.array([0.2, 0.2, 0.2, np.nan])
    adapted, head, applied = adaptations.adjust(
        VERSION, proba, ["A", None, "B", "C"], [26.0, 26.0, None, 1], upset
    )
    assert adapted[0, 2] > 0.2
    assert adapted[0].sum() == pytest.approx(1.0)
    assert adapted[1:].tolist() == proba[1:].tolist()  # no site, switched off, no votes
    assert head is not None
    assert head[0] > 0.2  # votes of +3: every one dissatisfied
    np.testing.assert_array_equal(head[1:], upset[1:])
    assert applied == [adaptations.learned.sites["A"], None, None, None]
    both = learner()
    both.refresh()
    ta = np.array([20.0, 26.0, 30.0, np.nan])
    mixed, _, _ = both.adjust(VERSION, proba, ["A", "B", "A", "B"], [*ta[:3], None])
    for i, site in enumerate(["A", "B", "A", "B"]):  # each row by its own site's state
        alone = SiteAdjustment.from_json(both.learned.sites[site].state)
        expected = np.exp(alone.apply(np.log(proba[i : i + 1]), ta[i : i + 1]))
        assert mixed[i] == pytest.approx(expected[0], abs=1e-12)
    other, _, none = adaptations.adjust("4", proba, ["A"] * 4, [26.0] * 4)
    assert other is proba
    assert none == [None] * 4
    database.close()


def test_a_new_version_learns_from_votes_on_the_answers_of_the_one_before(
    log_url: str, learner: Callable[..., SiteAdaptations]
) -> None:
    database = LogDatabase(log_url)
    zero_shot = Probabilities(0.5, 0.4, 0.1)
    adapted = [
        _answered("A", version="2", adaptation=Adaptation("A", 3, 7, "cool", zero_shot, 0.1))
        for _ in range(20)
    ]
    _voted(database, adapted)
    stored = table_rows(log_url, predictions)[0]
    assert (stored["adapted_votes"], stored["adaptation_version"]) == (3, 7)
    assert (stored["zero_shot_class"], stored["zero_shot_dissatisfied"]) == ("cool", 0.1)
    fresh = learner()  # follows VERSION: it scores the rooms voted on again, its own answers
    assert fresh.refresh() == 1
    assert fresh.learned.sites["A"].votes == 20
    other = learner()  # another model, answering the same rooms otherwise, learns otherwise
    other.follow("9", LEARN, lambda rooms: (np.tile([0.5, 0.4, 0.1], (len(rooms), 1)), None))
    assert other.refresh() == 1
    ours = SiteAdjustment.from_json(fresh.learned.sites["A"].state)
    theirs = SiteAdjustment.from_json(other.learned.sites["A"].state)
    assert theirs.offset[2] - theirs.offset[0] > ours.offset[2] - ours.offset[0]  # colder model
    assert ours.dissatisfied > 0.0  # its head said 0.2 to votes of +3
    assert theirs.dissatisfied == 0.0  # a model without heads learns no head
    database.close()


def test_the_writer_process_answers_the_learners_calls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    database = LogDatabase(url)
    _voted(database, [_answered("A") for _ in range(10)])
    writer = LogProcess(url, tmp_path / "spool").start()
    adaptations = SiteAdaptations(writer, SiteAdaptationServeSettings(refresh_seconds=0.05))
    adaptations.follow(VERSION, LEARN, _scored)
    adaptations.start()
    try:
        deadline = time.monotonic() + 30
        while "A" not in adaptations.learned.sites and time.monotonic() < deadline:
            time.sleep(0.05)
        assert adaptations.learned.sites["A"].votes == 10
    finally:
        adaptations.close()
        writer.close()
    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(site_adaptations)).scalar() == 1
    database.close()
