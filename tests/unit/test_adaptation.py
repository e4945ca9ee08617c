"""Site adaptation: what a site's earlier votes teach, replayed day by day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conforto._adaptation.frame import votes_of
from conforto._adaptation.replay import choose_strength, replay
from conforto._adaptation.report import (
    BUCKETS,
    Answered,
    BucketScores,
    Difference,
    by_earlier_votes,
    compare,
)
from conforto._adaptation.site import (
    AdaptationSettings,
    SiteAdjustment,
    Votes,
    fit_latest,
    fit_site,
)
from conforto._lifecycle.gate_checks import adaptation_checks
from conforto._model.adapted import Answers, replayed
from conforto._training.adaptation import AdaptationSummary, adapt_out_of_fold
from conforto.errors import ArtifactError
from tests.factories import bare_model, manifest_of

GENERAL = np.log([0.3, 0.4, 0.3])  # the zero-shot answer of every synthetic row
SETTINGS = AdaptationSettings()


def _votes(
    n: int,
    *,
    warm: float,
    seed: int = 0,
    days: int = 10,
    ta: float | None = None,
    occupants: int = 0,
) -> Votes:
    """``n`` votes over ``days`` days of one site whose occupants feel ``warm`` nats warmer
    than the general model says (a shift of the warm class's log-probability).
    """
    rng = np.random.default_rng(seed)
    truth = np.exp(GENERAL + np.array([0.0, 0.0, warm]))
    y = rng.choice(3, size=n, p=truth / truth.sum())
    return Votes(
        logp=np.tile(GENERAL, (n, 1)),
        y=y.astype(np.int64),
        day=np.sort(rng.integers(0, days, size=n)).astype(np.float64),
        ta=np.full(n, 24.0) if ta is None else rng.normal(ta, 2.0, size=n),
        occupant=np.array(
            [f"o{k % occupants}" if occupants else None for k in range(n)], dtype=object
        ),
    )


def _warmth(learned: SiteAdjustment) -> float:
    """How much warmer than cool the site's offsets make a row [nats]."""
    return float(learned.offset[2] - learned.offset[0])


def test_a_site_that_feels_warm_is_learned_and_few_votes_are_shrunk_toward_the_model() -> None:
    settings = AdaptationSettings(slope_ratio=None, occupant_ratio=None, half_life_days=None)
    many = fit_site(_votes(4000, warm=1.0), settings, day=100.0)
    few = fit_site(_votes(8, warm=1.0), settings, day=100.0)
    assert many.votes == 4000
    assert few.votes == 8
    assert _warmth(many) == pytest.approx(1.0, abs=0.15)
    assert 0 < _warmth(few) < 0.5 * _warmth(many)
    stronger = fit_site(_votes(8, warm=1.0), settings.model_copy(update={"strength": 50}), day=100)
    assert 0 < _warmth(stronger) < _warmth(few)


def test_only_votes_of_earlier_days_teach() -> None:
    votes = _votes(300, warm=1.5, days=10)
    settings = AdaptationSettings()
    learned = fit_site(votes, settings, day=5.0)
    assert learned.votes == int((votes.day < 5).sum())
    nothing = fit_site(votes, settings, day=0.0)
    assert nothing.votes == 0
    assert not nothing.offset.any()
    assert nothing.slope == 0
    np.testing.assert_array_equal(nothing.apply(votes.logp, votes.ta), votes.logp)


def test_the_adjustment_is_capped_and_keeps_probabilities() -> None:
    settings = AdaptationSettings(cap=0.2, slope_ratio=None, occupant_ratio=None)
    learned = fit_site(_votes(3000, warm=3.0), settings, day=100.0)
    change = learned.shift(np.array([24.0]))
    assert np.abs(change).max() == pytest.approx(0.2)
    adapted = np.exp(learned.apply(np.tile(GENERAL, (1, 1)), np.array([24.0])))
    assert adapted.sum() == pytest.approx(1.0)
    assert adapted[0, 2] > np.exp(GENERAL[2])


def test_old_votes_fade() -> None:
    """A site warm long ago and cool lately: with fading the recent votes win."""
    old, recent = _votes(600, warm=2.0, days=10, seed=1), _votes(600, warm=-2.0, days=10, seed=2)
    later = Votes(recent.logp, recent.y, recent.day + 200, recent.ta, recent.occupant)
    both = Votes.join(old, later)
    still = AdaptationSettings(slope_ratio=None, occupant_ratio=None, half_life_days=None)
    fading = still.model_copy(update={"half_life_days": 10.0})
    assert abs(_warmth(fit_site(both, still, day=215.0))) < 1.0
    assert _warmth(fit_site(both, fading, day=215.0)) < -1.5


def test_the_slope_follows_a_site_more_sensitive_to_temperature() -> None:
    votes = _votes(3000, warm=0.0, ta=24.0, seed=3)
    # occupants twice as sensitive as the model: each kelvin adds 1 nat toward warm
    truth = GENERAL + np.outer(votes.ta - 24.0, [-0.5, 0.0, 0.5])
    p = np.exp(truth) / np.exp(truth).sum(axis=1, keepdims=True)
    rng = np.random.default_rng(4)
    y = np.array([rng.choice(3, p=row) for row in p], dtype=np.int64)
    votes = Votes(votes.logp, y, votes.day, votes.ta, votes.occupant)
    learned = fit_site(votes, AdaptationSettings(occupant_ratio=None), day=100.0)
    assert learned.slope == pytest.approx(0.5, abs=0.1)
    assert learned.reference_ta == pytest.approx(24.0, abs=0.2)


def test_an_occupant_is_learned_on_top_of_the_site_and_unknown_ones_get_the_site() -> None:
    votes = _votes(2000, warm=0.0, occupants=2, seed=5)
    y = votes.y.copy()
    y[votes.occupant == "o1"] = 2  # occupant o1 always votes warm
    votes = Votes(votes.logp, y, votes.day, votes.ta, votes.occupant)
    learned = fit_site(votes, AdaptationSettings(slope_ratio=None), day=100.0)
    ta = np.full(3, 24.0)
    answers = np.exp(learned.apply(np.tile(GENERAL, (3, 1)), ta, np.array(["o0", "o1", None])))
    assert answers[1, 2] > 0.8
    assert answers[0, 2] < answers[2, 2] < answers[1, 2]
    only = fit_site(votes, AdaptationSettings(slope_ratio=None), day=100.0, occupants={"o0"})
    assert set(only.occupants) == {"o0"}


def _head(votes: Votes, rate: float, seed: int = 1) -> Votes:
    """``votes`` with a dissatisfied head that answers 0.2 where ``rate`` of them are."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(len(votes)) < rate).astype(np.int64)
    head = np.full(len(votes), 0.2)
    return Votes(votes.logp, votes.y, votes.day, votes.ta, votes.occupant, labels, head)


def test_a_site_more_dissatisfied_than_the_head_says_is_learned_and_shrunk() -> None:
    many = fit_site(_head(_votes(400, warm=0.0), rate=0.5), SETTINGS, day=10.0)
    few = fit_site(_head(_votes(8, warm=0.0), rate=0.5), SETTINGS, day=10.0)
    calm = fit_site(_head(_votes(400, warm=0.0), rate=0.2), SETTINGS, day=10.0)
    assert many.apply_dissatisfied(np.array([0.2]))[0] == pytest.approx(0.5, abs=0.06)
    assert 0.0 < few.dissatisfied < many.dissatisfied
    assert abs(calm.dissatisfied) < 0.15  # as the head says: little to learn
    assert fit_site(_votes(400, warm=0.0), SETTINGS, day=10.0).dissatisfied == 0.0  # no head
    again = SiteAdjustment.from_json(many.to_json())
    assert again.dissatisfied == many.dissatisfied
    assert np.isnan(many.apply_dissatisfied(np.array([np.nan]))[0])


def test_a_services_state_learns_every_dated_vote_and_survives_json() -> None:
    votes = _votes(60, warm=1.0, ta=24.0, occupants=4)
    undated = Votes(
        GENERAL[None], np.array([0]), np.array([np.nan]), np.array([24.0]), np.array([None])
    )
    votes = Votes.join(votes, undated)
    learned = fit_latest(votes, SETTINGS)
    expected = fit_site(votes, SETTINGS, day=votes.day[:-1].max() + 1, occupants=())
    assert learned.votes == 60  # the undated vote teaches nothing
    assert learned.occupants == {}  # requests name no occupant
    assert learned.offset.tolist() == expected.offset.tolist()
    assert learned.slope == expected.slope
    again = SiteAdjustment.from_json(learned.to_json())
    rows = np.tile(GENERAL, (3, 1))
    ta = np.array([20.0, 24.0, np.nan])
    assert again.apply(rows, ta).tolist() == learned.apply(rows, ta).tolist()
    assert fit_latest(votes.take(np.array([60])), SETTINGS).votes == 0


@pytest.mark.parametrize(
    "text",
    ["{}", '{"offset": [1, 2], "slope": 0, "reference_ta": 0, "cap": 3, "votes": 1}', "not json"],
)
def test_a_state_that_is_not_an_adjustment_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a site adjustment's state"):
        SiteAdjustment.from_json(text)


def _sites(n_sites: int = 6, seed: int = 0) -> tuple[Votes, np.ndarray]:
    parts = [_votes(150, warm=(-1) ** k * 1.0, seed=seed + k, occupants=3) for k in range(n_sites)]
    votes = Votes.join(*parts)
    votes.occupant[:] = [f"{k // 150}/{o}" for k, o in enumerate(votes.occupant)]
    sites = np.repeat(np.arange(n_sites), 150)
    undated = np.arange(0, len(votes), 7)  # every seventh row has no date
    votes.day[undated] = np.nan
    return votes, sites


def test_the_replay_learns_only_from_earlier_days_of_the_same_site() -> None:
    votes, sites = _sites()
    settings = AdaptationSettings()
    first = replay(votes, sites, settings)
    # blank site 0's votes from day 5 on: none of its answers up to day 5 changes (the votes of
    # one day never see each other), nor any other site's
    blank = (sites == 0) & (votes.day >= 5)
    blanked = Votes(votes.logp, np.where(blank, 0, votes.y), votes.day, votes.ta, votes.occupant)
    second = replay(blanked, sites, settings)
    kept = (sites == 0) & ~(votes.day > 5)
    np.testing.assert_array_equal(first.logp[kept], second.logp[kept])
    np.testing.assert_array_equal(first.logp[sites != 0], second.logp[sites != 0])
    later = (sites == 0) & (votes.day > 5)
    assert not np.array_equal(first.logp[later], second.logp[later])
    # undated rows and first days are zero-shot; the count is of earlier-day votes
    undated = np.isnan(votes.day)
    np.testing.assert_array_equal(first.logp[undated], votes.logp[undated])
    assert (first.votes[undated] == 0).all()
    row = np.flatnonzero((sites == 1) & (votes.day == 4))[0]
    assert first.votes[row] == int(((sites == 1) & (votes.day < 4)).sum())


def test_an_undated_vote_teaches_nothing() -> None:
    votes, sites = _sites()
    undated = np.isnan(votes.day)
    flipped = Votes(votes.logp, np.where(undated, 2, votes.y), votes.day, votes.ta, votes.occupant)
    settings = AdaptationSettings()
    np.testing.assert_array_equal(
        replay(votes, sites, settings).logp, replay(flipped, sites, settings).logp
    )


def test_each_fold_gets_the_strength_the_other_folds_favour() -> None:
    votes, sites = _sites()
    folds = sites % 3
    settings = AdaptationSettings(slope_ratio=None, occupant_ratio=None)
    chosen = choose_strength(votes, sites, folds, settings, strengths=(1.0, 1000.0))
    assert chosen.strength == 1.0  # the sites differ: trusting their votes pays
    assert chosen.losses[1.0] < chosen.losses[1000.0]
    # fold 0's own votes do not choose fold 0's strength
    fold0 = folds == 0
    other = Votes(votes.logp, np.where(fold0, 1, votes.y), votes.day, votes.ta, votes.occupant)
    again = choose_strength(other, sites, folds, settings, strengths=(1.0, 1000.0))
    assert again.by_fold[0] == chosen.by_fold[0]


def test_the_report_pairs_answers_by_bucket_with_building_intervals() -> None:
    votes, sites = _sites()
    settings = AdaptationSettings()
    replayed = replay(votes, sites, settings)
    zero, adapted = np.exp(votes.logp), np.exp(replayed.logp)
    weights = np.ones(3)
    buckets = by_earlier_votes(votes.y, zero, adapted, replayed.votes, weights, sites)
    labels = [b["bucket"] for b in buckets]
    assert labels == [b for b, _, _ in BUCKETS if b in labels]
    assert {"0", "40+"} <= set(labels)
    assert sum(b["votes"] for b in buckets) == len(votes)
    none = buckets[0]
    assert none["zero_shot"] == none["adapted"]
    assert none["log_loss_change"]["value"] == 0
    most = buckets[-1]
    change = most["log_loss_change"]
    assert change["high"] < 0  # the sites really differ: learning them pays
    assert change["low"] <= change["value"] <= change["high"]
    inside = np.arange(len(votes)) % 4 > 0
    covered = compare(
        votes.y, zero, adapted, weights, sites, label="all", covered=(inside, ~inside)
    )
    assert covered["zero_shot"]["coverage"] == pytest.approx(0.75, abs=0.01)
    assert covered["adapted"]["coverage"] == pytest.approx(0.25, abs=0.01)
    same = compare(votes.y, zero, zero, weights, sites, label="same")
    assert same["macro_f1_gain"]["low"] == same["macro_f1_gain"]["high"] == 0


def test_votes_of_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one row each"):
        Votes(
            np.zeros((3, 3)), np.zeros(3, np.int64), np.zeros(2), np.zeros(3), np.zeros(3, object)
        )


def _predictions() -> pd.DataFrame:
    """A cross-validation's predictions frame of six synthetic sites in three folds."""
    votes, sites = _sites()
    proba = np.exp(votes.logp)
    stamps = pd.to_datetime(votes.day, unit="D", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame(
        {
            "fold": sites % 3,
            "building_id": sites,
            "y": votes.y,
            "decision": proba.argmax(axis=1),
            "p_cool": proba[:, 0],
            "p_neutral": proba[:, 1],
            "p_warm": proba[:, 2],
            "timestamp": pd.Series(stamps).where(~np.isnan(votes.day), None),
            "ta": votes.ta,
            "subject_id": [float(str(o).rsplit("o", 1)[1]) for o in votes.occupant],
            # site 0's occupants are dissatisfied more often than the head says
            "dissatisfied": np.where(votes.y < 0, -1, (sites == 0) | (votes.y != 1)),
            "p_dissatisfied": np.full(len(sites), 0.3),
        }
    )


def test_the_frame_gives_days_and_occupants_per_building() -> None:
    frame = _predictions()
    votes = votes_of(frame)
    expected, _ = _sites()
    np.testing.assert_array_equal(votes.day, expected.day)
    assert votes.occupant[0] == "0:0"
    assert votes.occupant[-1] == "5:2"
    assert len(set(votes.occupant)) == 6 * 3  # subject 0 of two buildings: two people
    np.testing.assert_allclose(votes.logp, expected.logp)


def test_training_replays_its_folds_and_stores_the_strength_they_chose() -> None:
    frame = _predictions()
    weights = [[1.0, 1.0, 1.0]] * 3
    settings = AdaptationSettings(half_life_days=None)
    chosen, summary = adapt_out_of_fold(frame, weights, settings, (1.0, 1000.0))
    assert chosen.strength == 1.0
    assert chosen.cap == settings.cap
    assert summary["settings"]["strength"] == 1.0
    assert summary["strength_by_fold"] == [1.0, 1.0, 1.0]
    assert set(summary["log_loss_by_strength"]) == {"1", "1000"}
    adapted = frame[["adapted_cool", "adapted_neutral", "adapted_warm"]].to_numpy()
    np.testing.assert_allclose(adapted.sum(axis=1), 1.0)
    first_days = frame["adapted_votes"] == 0
    np.testing.assert_allclose(
        adapted[first_days], frame.loc[first_days, ["p_cool", "p_neutral", "p_warm"]]
    )
    for bucket in summary["buckets"]:
        for answers in (bucket["zero_shot"], bucket["adapted"]):
            assert 0.0 <= answers["coverage"] <= 1.0
    headline = summary["headline"]
    assert headline is not None
    assert headline["bucket"] == "20+"
    assert headline["votes"] == int((frame["adapted_votes"] >= 20).sum())
    assert headline["log_loss_change"]["value"] < 0
    brier = headline["dissatisfied_brier_change"]  # the head adapted too: closer to the votes
    assert brier["value"] == pytest.approx(
        headline["adapted"]["dissatisfied_brier"] - headline["zero_shot"]["dissatisfied_brier"]
    )
    assert brier["high"] < 0
    assert frame.loc[first_days, "adapted_dissatisfied"].eq(0.3).all()


def _bucket(label: str, votes: int, loss: tuple[float, float, float]) -> BucketScores:
    value, low, high = loss
    same = Answered(macro_f1=0.5, log_loss=0.9)
    return BucketScores(
        bucket=label,
        votes=votes,
        buildings=30,
        zero_shot=same,
        adapted=same,
        macro_f1_gain=Difference(value=0.0, low=-0.01, high=0.01),
        log_loss_change=Difference(value=value, low=low, high=high),
    )


def test_the_gate_refuses_a_large_bucket_made_worse_and_only_shows_small_ones() -> None:
    summary = AdaptationSummary(
        settings=AdaptationSettings().model_dump(),
        strength_by_fold=[5.0],
        log_loss_by_strength={"5": 0.9},
        buckets=[
            _bucket("0", 9000, (0.0, 0.0, 0.0)),
            _bucket("1-9", 400, (0.05, 0.01, 0.09)),  # worse, but too small to judge
            _bucket("10-19", 600, (0.01, -0.01, 0.03)),  # within its interval
            _bucket("40+", 5000, (-0.04, -0.06, -0.02)),
        ],
        headline=None,
    )
    checks = adaptation_checks(summary, min_votes=500)
    assert [(c.name, c.passed) for c in checks] == [
        ("site adaptation with 10-19 earlier votes", True),
        ("site adaptation with 40+ earlier votes", True),
    ]
    summary["buckets"][3] = _bucket("40+", 5000, (0.02, 0.005, 0.04))
    refused = adaptation_checks(summary, min_votes=500)
    assert [c.passed for c in refused] == [True, False]
    assert "5,000 votes" in refused[1].detail
    summary["buckets"][3] = _bucket("40+", 5000, (-0.04, -0.06, -0.02))
    summary["buckets"][3]["dissatisfied_brier_change"] = Difference(
        value=0.01, low=0.004, high=0.02
    )
    head_worse = adaptation_checks(summary, min_votes=500)
    assert [c.passed for c in head_worse] == [True, False]
    assert "dissatisfied Brier +0.0100" in head_worse[1].detail
    assert adaptation_checks(None, min_votes=500) == []


def test_a_model_trained_before_adaptation_refuses_to_replay() -> None:
    frame = pd.DataFrame({"building_id": [1.0], "timestamp": ["2020-01-01"], "ta": [24.0]})
    answers = Answers(np.array([[0.3, 0.4, 0.3]]), np.full((1, 5), np.nan))
    with pytest.raises(ArtifactError, match="trained before site adaptation"):
        replayed(bare_model(), frame, np.array([True]), answers)
    adapting = bare_model(manifest=manifest_of(adaptation=AdaptationSettings()))
    adapted = replayed(adapting, frame, np.array([True]), answers)
    np.testing.assert_array_equal(adapted.proba, answers.proba)  # nothing earlier to learn from
    assert adapted.used is not None
    assert adapted.used.tolist() == [0]
