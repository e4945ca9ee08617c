"""The challenger's parts: its window and automatic stop, the canary's choice of clients, the
shadow's queue, the A/B report's statistics and the gate's shadow check."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from conforto._lifecycle.shadow import shadow_check
from conforto._monitor.compare import MIN_VOTES, CompareReport, compare_canary, compare_shadow
from conforto._predictions.records import EventRow, PredictionRow, ShadowRow
from conforto._predictions.store import LogDatabase
from conforto._serving.challenger import Challenger, Window
from conforto._serving.challenger_slot import resolve
from conforto._settings import ChallengerSettings
from conforto.errors import RegistryError, ReloadError
from tests.factories import answer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from conforto._predictions.answer import Prediction

LIMITS = ChallengerSettings(window=100, min_predictions=20, max_p99_ms=50.0)


class Classifier:
    """A challenger's predictor: class ``answer`` for every row, or a failure; it may wait for
    ``gate`` before answering (a challenger that fell behind)."""

    version = "9"

    def __init__(self, answer: int = 1, fails: bool = False) -> None:
        self.answer, self.fails = answer, fails
        self.matrices: list[np.ndarray | None] = []
        self.gate = threading.Event()
        self.gate.set()

    features = ("ta",)

    def classify(
        self, rows: Sequence[dict[str, Any]], matrix: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        self.matrices.append(matrix)
        self.gate.wait(10)
        if self.fails:
            raise RuntimeError("the challenger's booster broke")
        proba = np.tile([0.2, 0.5, 0.3], (len(rows), 1))
        return np.full(len(rows), self.answer), proba


class Spooled:
    """A prediction log that keeps what it is given."""

    def __init__(self) -> None:
        self.shadow: list[ShadowRow] = []

    def add_shadow(self, rows: Sequence[ShadowRow]) -> bool:
        self.shadow.extend(rows)
        return True


def _challenger(
    predictor: Classifier,
    mode: str = "shadow",
    percent: float = 10.0,
    limits: ChallengerSettings = LIMITS,
) -> tuple[Challenger, Spooled, list[tuple[str, str]]]:
    stops: list[tuple[str, str]] = []
    log = Spooled()
    challenger = Challenger(
        predictor,  # type: ignore[arg-type]
        limits,
        mode=mode,  # type: ignore[arg-type]
        percent=percent,
        log=log,  # type: ignore[arg-type]
        answered=lambda *_: None,
        on_stop=lambda _c, kind, reason: stops.append((kind, reason)),
    )
    return challenger, log, stops


def _answered(n: int, cls: str = "neutral") -> list[Prediction]:
    return [answer(cls, f"{i:032d}") for i in range(n)]


def _settle(challenger: Challenger, shadowed: int) -> None:
    """Wait until ``shadowed`` rows are scored and judged (none queued or in flight)."""
    deadline = time.monotonic() + 10
    while (challenger.shadowed < shadowed or challenger._waiting) and time.monotonic() < deadline:
        time.sleep(0.01)


# ------------------------------------------------------------------------------------ window


def test_the_window_judges_nothing_before_its_minimum() -> None:
    window = Window(100)
    window.add([True] * 19, [1.0] * 19)
    assert window.breach(LIMITS) is None
    window.add([True], [1.0])
    kind, reason = window.breach(LIMITS) or ("", "")
    assert kind == "error_rate"
    assert "error rate 100.0% over the last 20 predictions (limit 5.0%)" in reason


def test_the_window_forgets_its_oldest_predictions() -> None:
    window = Window(50)
    window.add([True] * 50, [1.0] * 50)
    window.add([False] * 50, [1.0] * 50)
    assert window.figures()["error_rate"] == 0.0
    assert window.breach(LIMITS) is None


def test_the_window_names_a_slow_or_disagreeing_challenger() -> None:
    slow = Window(100)
    slow.add([False] * 100, [5.0] * 98 + [80.0] * 2)
    kind, reason = slow.breach(LIMITS) or ("", "")
    assert kind == "latency"
    assert "limit 50 ms" in reason
    apart = Window(100)
    apart.add([False] * 40, [1.0] * 40, [True] * 30 + [False] * 10)
    assert (apart.breach(LIMITS) or ("",))[0] == "disagreement"
    assert apart.figures()["disagreement"] == pytest.approx(0.75)


# ------------------------------------------------------------------------------------ canary


def test_a_canary_keeps_each_client_and_takes_its_share() -> None:
    challenger, _, _ = _challenger(Classifier(), "canary", percent=30.0)
    clients = [f"client-{i}" for i in range(20_000)]
    first = [challenger.answers(c) for c in clients]
    assert first == [challenger.answers(c) for c in clients]  # sticky
    share, sd = np.mean(first), np.sqrt(0.3 * 0.7 / len(clients))
    assert abs(share - 0.3) < 4 * sd
    renamed = Classifier()
    renamed.version = "10"
    other, _, _ = _challenger(renamed, "canary", percent=30.0)
    both = np.mean([a and other.answers(c) for a, c in zip(first, clients, strict=True)])
    assert abs(both - 0.09) < 4 * np.sqrt(
        0.09 * 0.91 / len(clients)
    )  # another version, another draw
    challenger.close()
    other.close()


def test_a_shadow_or_a_stopped_canary_answers_no_one() -> None:
    shadow, _, _ = _challenger(Classifier(), "shadow", percent=100.0)
    canary, _, _ = _challenger(Classifier(), "canary", percent=100.0)
    assert not shadow.answers("anyone")
    assert canary.answers("anyone")
    canary.stopped = "by hand"
    assert not canary.answers("anyone")
    shadow.close()
    canary.close()


def test_a_failing_canary_is_stopped_once() -> None:
    challenger, _, stops = _challenger(Classifier(), "canary", percent=50.0)
    for _ in range(30):
        challenger.failed(time.perf_counter(), RuntimeError("broken"))
    assert [kind for kind, _ in stops] == ["error_rate"]
    assert challenger.status().state == "stopped"
    challenger.close()


# ------------------------------------------------------------------------------------ shadow


def test_a_shadow_logs_its_answers_beside_productions() -> None:
    challenger, log, stops = _challenger(Classifier(answer=2))
    challenger.shadow([{"ta": 20.0}] * 3, _answered(3, "warm"))
    _settle(challenger, 3)
    assert [(r.prediction_id, r.model_version, r.predicted_class) for r in log.shadow] == [
        (f"{i:032d}", "9", "warm") for i in range(3)
    ]
    first = log.shadow[0]
    assert (first.p_cool, first.p_neutral, first.p_warm) == (0.2, 0.5, 0.3)
    assert first.error is None
    assert challenger.status().window["disagreement"] == 0.0
    assert stops == []
    challenger.close()


def test_a_shadow_that_falls_behind_skips_batches_and_never_blocks() -> None:
    slow = Classifier()
    slow.gate.clear()
    limits = LIMITS.model_copy(update={"shadow_backlog": 8})
    challenger, _, _ = _challenger(slow, limits=limits)
    for _ in range(10):
        challenger.shadow([{"ta": 20.0}] * 4, _answered(4))
    assert challenger.shadowed == 0  # every call returned while the scorer still waits
    assert challenger.skipped == 8 * 4
    slow.gate.set()
    _settle(challenger, 8)
    assert challenger.shadowed == 8
    challenger.close()


def test_a_failing_or_disagreeing_shadow_is_stopped() -> None:
    failing, log, stops = _challenger(Classifier(fails=True))
    for _ in range(5):
        failing.shadow([{"ta": 20.0}] * 10, _answered(10))
    _settle(failing, 20)
    assert [kind for kind, _ in stops] == ["error_rate"]
    assert log.shadow[0].predicted_class is None
    assert log.shadow[0].error == "RuntimeError"
    failing.close()
    apart, _, stops = _challenger(Classifier(answer=0))
    for _ in range(3):
        apart.shadow([{"ta": 20.0}] * 10, _answered(10, "warm"))
    _settle(apart, 20)
    assert [kind for kind, _ in stops] == ["disagreement"]
    apart.close()


def test_a_challenger_that_is_no_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReloadError, match="neither a model directory nor a registry version"):
        resolve(str(tmp_path / "missing"), None)
    assert resolve(str(tmp_path), None) == (tmp_path, "")


def test_a_challenger_version_is_found_by_the_resolver_the_service_was_given(
    tmp_path: Path,
) -> None:
    asked: list[str] = []

    def registry(version: str) -> tuple[Path, str]:
        asked.append(version)
        if version != "2":
            raise RegistryError(f"version {version!r} of conforto does not exist")
        return tmp_path, version

    assert resolve("2", registry) == (tmp_path, "2")
    with pytest.raises(ReloadError, match="challenger version 9: version '9' of conforto does"):
        resolve("9", registry)
    assert asked == ["2", "9"]
    with pytest.raises(ReloadError, match="knows only the models baked or mounted in it"):
        resolve("2", None)  # the image: no registry


# ------------------------------------------------------------------------------------ report


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Production right 60 % of the time, the shadow 80 %, on the same voted requests."""
    rng = np.random.default_rng(seed)
    vote = rng.integers(0, 3, n)
    names = np.array(["cool", "neutral", "warm"])
    wrong = (vote + 1) % 3
    production = np.where(rng.random(n) < 0.6, vote, wrong)
    shadow = np.where(rng.random(n) < 0.8, vote, wrong)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "prediction_id": [f"{i:032d}" for i in range(n)],
            "created": [start + timedelta(hours=i) for i in range(n)],
            "model_version": "1",
            "predicted_class": names[production],
            "site": [f"site {i % 40}" for i in range(n)],
            "arm": "production",
            "shadow_version": "2",
            "shadow_class": names[shadow],
            "shadow_error": None,
            "vote": vote.astype(float),
        }
    )


def test_the_paired_interval_holds_the_shadows_gain() -> None:
    rows = _rows(2000)
    report = compare_shadow(rows, reps=400)
    assert report.difference is not None
    assert report.challenger is not None
    assert report.production is not None
    gain = report.difference["accuracy"]
    assert gain.value == pytest.approx(report.challenger.accuracy - report.production.accuracy)
    assert gain.ci[0] < gain.value < gain.ci[1]
    assert gain.ci[0] > 0.1  # the true gain is 0.2
    assert gain.ci[1] < 0.3
    assert report.agreement == pytest.approx(
        (rows["predicted_class"] == rows["shadow_class"]).mean()
    )
    assert sum(report.class_mix["challenger"].values()) == pytest.approx(1.0)


def test_a_canary_is_compared_arm_against_arm() -> None:
    rows = _rows(2000)
    canary = rows.index % 4 == 0
    rows.loc[canary, "arm"] = "canary"
    rows.loc[canary, "predicted_class"] = rows.loc[canary, "shadow_class"]
    report = compare_canary(rows, reps=400)
    assert report.predictions == {"production": 1500, "canary": 500}
    assert report.difference is not None
    low, high = report.difference["accuracy"].ci
    assert low < 0.2 < high
    paired = compare_shadow(_rows(2000), reps=400).difference
    assert paired is not None
    assert high - low > paired["accuracy"].ci[1] - paired["accuracy"].ci[0]  # other requests


def test_too_few_votes_give_no_scores() -> None:
    rows = _rows(100)
    rows.loc[MIN_VOTES - 1 :, "vote"] = np.nan
    report = compare_shadow(rows)
    assert report.votes == MIN_VOTES - 1
    assert report.difference is None
    written = CompareReport({}, 100, {"2": report}, {}, ()).to_json()
    assert "difference" not in written["shadow"]["2"]  # compare.json: no scores to show
    assert written["shadow"]["2"]["votes"] == MIN_VOTES - 1


# ------------------------------------------------------------------------------ shadow check


def test_the_shadow_check_counts_predictions_and_stops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    database = LogDatabase(url)
    made = [
        PredictionRow.of(answer("neutral", f"{i:032d}"), {"ta": 21.0}, 1.0, None, now=time.time())
        for i in range(30)
    ]
    shadowed = [
        ShadowRow(f"{i:032d}", time.time(), "2", "warm", 0.1, 0.2, 0.7, 3.0) for i in range(25)
    ]
    failed = [
        ShadowRow(f"{i:032d}", time.time(), "2", None, None, None, None, 3.0, "KeyError")
        for i in range(25, 30)
    ]
    database.write([*made, *shadowed, *failed])
    check = shadow_check(url, ["2", "abc"], 25)
    assert (check.passed, check.value, check.threshold) == (True, 25.0, 25.0)
    assert not shadow_check(url, ["2"], 26).passed
    assert shadow_check(url, ["3"], 1).detail.startswith("0 shadowed predictions")
    database.write(
        [EventRow(time.time(), "2", "shadow", "stopped", "error rate 9.0% (limit 5.0%)")]
    )
    stopped = shadow_check(url, ["2"], 25)
    assert not stopped.passed
    assert stopped.detail.endswith("stopped automatically: error rate 9.0% (limit 5.0%)")
    database.close()


def test_a_shadow_with_productions_features_reuses_its_matrix() -> None:
    same = Classifier()
    challenger, log, _ = _challenger(same)
    encoded = np.arange(6.0).reshape(3, 2)
    challenger.shadow([{"ta": 20.0}] * 3, _answered(3), (("ta",), encoded))
    _settle(challenger, 3)
    challenger.shadow([{"ta": 20.0}] * 2, _answered(2), (("ta", "rh"), encoded[:2]))
    _settle(challenger, 5)
    assert same.matrices[0] is not None
    assert same.matrices[0].tolist() == encoded.tolist()
    assert same.matrices[1] is None  # other features: the shadow encodes the rows itself
    assert len(log.shadow) == 5
    challenger.close()
