"""A quiet day is not a failure: a production model and no traffic yet (the log has no table),
or a window without a prediction, is quiet for every monitor; an unreachable log still fails,
and so does an empty file given to judge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from conforto._data.load import load_dataset
from conforto._registry.model_registry import open_registry
from conforto._settings import get_settings
from tests.cli import conforto_cli
from tests.factories import serve_and_vote
from tests.processes import Daemon, free_port, pushgateway, scrape

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pandas as pd


pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("production")]

MONITORS = (["drift"], ["performance"], ["check"], ["compare"])


@pytest.fixture
def production(tiny_models: tuple[Path, Path]) -> str:
    """A home whose registry has version 1 in production."""
    registry = open_registry(get_settings())
    registry.register(tiny_models[0])
    registry.promote("1", force=True)
    return "1"


@pytest.fixture(scope="module")
def rooms(holdout_paths: tuple[Path, Path]) -> pd.DataFrame:
    frame = load_dataset(*holdout_paths).frame
    return frame[frame["thermal_sensation"].notna()].sample(50, random_state=3)


@pytest.fixture
def gateway() -> Iterator[Daemon]:
    daemon = pushgateway()
    yield daemon
    daemon.stop()


@pytest.mark.parametrize("monitor", MONITORS, ids=lambda m: m[0])
def test_before_the_first_prediction_every_monitor_is_quiet(
    monitor: list[str],
    tmp_path: Path,
    slack: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = slack
    log = tmp_path / "log.db"
    env = {"CONFORTO_SERVE__LOG_URL": f"sqlite:///{log}", "CONFORTO_NOTIFY__SLACK_WEBHOOK_URL": url}
    done = conforto_cli("monitor", *monitor, "--since", "1d", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no such table" not in done.stdout + done.stderr
    if monitor[0] in ("drift", "performance"):
        assert "quiet: no prediction in the prediction log" in done.stdout
    assert received == []  # nothing to tell


def test_a_quiet_window_pushes_its_gauges_with_no_rows(
    tiny_models: tuple[Path, Path],
    rooms: pd.DataFrame,
    tmp_path: Path,
    gateway: Daemon,
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    serve_and_vote(url, tiny_models[0], rooms, voted=0.5)  # the last two days' traffic
    env = {"CONFORTO_SERVE__LOG_URL": url}
    month_ago = ("--since", "40d", "--until", "35d")  # a window without it
    for monitor in ("drift", "performance"):
        done = conforto_cli("monitor", monitor, *month_ago, "--push", gateway.url, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "quiet:" in done.stdout
    metrics = scrape(f"{gateway.url}/metrics")
    rows = {k: v for k, v in metrics.items() if k.startswith("conforto_monitor_window_rows{")}
    assert sorted(rows.values()) == [0.0, 0.0]  # one per monitor
    assert any(k.startswith("conforto_monitor_last_run_timestamp_seconds{") for k in metrics)


def test_an_unreachable_log_and_an_empty_file_still_fail(tmp_path: Path) -> None:
    nowhere = f"postgresql+psycopg://conforto@127.0.0.1:{free_port()}/conforto"
    down = conforto_cli("monitor", "drift", env={"CONFORTO_SERVE__LOG_URL": nowhere})
    assert down.returncode == 1
    assert "cannot read the prediction log" in down.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("ta,tr,rh,vel,met,clo\n")
    judged = conforto_cli("monitor", "drift", "--input", str(empty))
    assert judged.returncode == 1
    assert "quiet" not in judged.stdout + judged.stderr


def test_a_home_no_command_has_made_yet_is_quiet_too(tmp_path: Path) -> None:
    """A new user's first `monitor compare`: the default log's folder does not exist yet."""
    home = tmp_path / "new" / ".conforto"
    done = conforto_cli("monitor", "compare", "--since", "1d", env={"CONFORTO_HOME": str(home)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no challenger ran in this window" in done.stdout
