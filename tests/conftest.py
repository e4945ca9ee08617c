"""Shared fixtures: synthetic frames, the real data (and a building-grouped sample), a temp home."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from conforto._settings import get_settings
from tests.factories import SHARED_DATA, make_frames, variant, write_buildings
from tests.models import migrated_store, trained
from tests.processes import Daemon, Postgres, Server, slack_receiver
from tests.processes import mlflow_server as mlflow_server_on

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Longest a test of each slow tier may take, its fixtures' setup included [s]: a hung server
#: or process fails its test with a traceback instead of stalling CI until its own limit.
TIER_TIMEOUTS = {
    "integration": 900,
    "e2e": 600,
    "load": 600,
    "browser": 600,
    "image": 1200,
    "spark": 900,
    "workflows": 1800,
}


#: What needs more than the locked environment (a tier's folder, or a fixture's server), and
#: how to run it: a bare ``pytest`` leaves it out unless ``-m`` or a path below it selects it.
NEEDS = {
    "e2e": "nginx, PostgreSQL, Prometheus, an mlflow server: make test, or pytest -m e2e",
    "load": "wrk: make test, or pytest -m load",
    "browser": "Debian's chromium: make test, or pytest -m browser",
    "image": "podman: make test-image",
    "spark": "Java: make test-spark",
    "workflows": "act, podman, an offline network namespace: make test-workflows",
    "postgresql": "PostgreSQL: make test, or pytest -m postgresql",
    "mlflow": "a real mlflow server: make test (it installs .venv-mlflow), or pytest -m mlflow",
}
LEFT_OUT = pytest.StashKey[dict[str, int]]()


def _need(item: pytest.Item) -> tuple[str, Path] | None:
    """What the test needs beyond the locked environment, and the path that names it."""
    if item.path.parent.name in NEEDS:
        return item.path.parent.name, item.path.parent
    fixtures = getattr(item, "fixturenames", ())
    if "postgres" in fixtures:
        return "postgresql", item.path
    if "mlflow_server" in fixtures:
        return "mlflow", item.path
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--seed``: the random seed of the tests that draw one (the crash tests print theirs)."""
    parser.addoption(
        "--seed", type=int, default=None, help="random seed of the crash tests (default: new)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test of a slow tier its tier's timeout, unless it names one itself; mark what
    needs more than the locked environment, and leave it out of a bare ``pytest``."""
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    keep, left_out = [], []
    for item in items:
        tier = item.path.parent.name
        if tier in TIER_TIMEOUTS and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIER_TIMEOUTS[tier]))
        need = _need(item)
        if need is not None:
            item.add_marker(need[0])
        if need is None or config.option.markexpr or any(p.is_relative_to(need[1]) for p in named):
            keep.append(item)
        else:
            left_out.append(item)
            config.stash.setdefault(LEFT_OUT, {}).setdefault(need[0], 0)
            config.stash[LEFT_OUT][need[0]] += 1
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which tests a bare ``pytest`` left out, and how to run them."""
    for need, count in config.stash.get(LEFT_OUT, {}).items():
        terminalreporter.write_line(f"left out: {count} {need} tests (they need {NEEDS[need]})")


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic measurements and metadata frames."""
    return make_frames()


@pytest.fixture
def data_files(tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[Path, Path]:
    """The synthetic frames written as csv files."""
    measurements, metadata = frames
    m, d = tmp_path / "measurements.csv", tmp_path / "metadata.csv"
    measurements.to_csv(m, index=False)
    metadata.to_csv(d, index=False)
    return m, d


@pytest.fixture(autouse=True)
def home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A temporary CONFORTO_HOME and working directory, so tests never write outside tmp_path.

    The home holds an embedded MLflow store whose schema is made (a copy of
    :func:`tests.models.migrated_store`). Parametrised
    indirectly with ``"relative"``, the home is a new user's: no variable set, nothing in the
    default ``.conforto`` relative to the working directory.
    """
    import shutil

    monkeypatch.chdir(tmp_path)
    if getattr(request, "param", "absolute") == "relative":
        monkeypatch.delenv("CONFORTO_HOME", raising=False)
        path = tmp_path / ".conforto"
    else:
        path = tmp_path / "home"
        shutil.copytree(migrated_store(), path)
        monkeypatch.setenv("CONFORTO_HOME", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def dev_paths() -> tuple[Path, Path]:
    """The real dev data: CONFORTO_MEASUREMENTS/CONFORTO_METADATA, else ../shared/data."""
    m = Path(
        os.environ.get("CONFORTO_MEASUREMENTS", SHARED_DATA / "db_measurements_v2.1.0.dev.csv.gz")
    )
    d = Path(os.environ.get("CONFORTO_METADATA", SHARED_DATA / "db_metadata_v2.1.0.dev.csv"))
    for path in (m, d):
        if not path.is_file():
            pytest.fail(
                f"real data not found at {path}: set CONFORTO_MEASUREMENTS/CONFORTO_METADATA"
            )
    return m, d


@pytest.fixture(scope="session")
def dev_frames(dev_paths: tuple[Path, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The real dev data as raw frames (read once per session)."""
    m, d = dev_paths
    return pd.read_csv(m, low_memory=False), pd.read_csv(d)


@pytest.fixture(scope="session")
def sample_paths(
    tmp_path_factory: pytest.TempPathFactory, dev_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> tuple[Path, Path]:
    """A building-grouped sample (30 % of the buildings) of the real data, as files."""
    rng = np.random.default_rng(7)
    ids = np.sort(dev_frames[0]["building_id"].unique())
    chosen = rng.choice(ids, size=len(ids) * 30 // 100, replace=False)
    folder = tmp_path_factory.mktemp("sample")
    return write_buildings(dev_frames, chosen, folder, "measurements.csv.gz")


@pytest.fixture(scope="session")
def trained_model(sample_paths: tuple[Path, Path]) -> Path:
    """A model of the building-grouped sample with a small budget (trained once per run)."""
    return trained(sample_paths, folds=3, search_trials=2, max_rounds=300)


@pytest.fixture(scope="session")
def holdout_paths(
    tmp_path_factory: pytest.TempPathFactory,
    dev_frames: tuple[pd.DataFrame, pd.DataFrame],
    sample_paths: tuple[Path, Path],
) -> tuple[Path, Path]:
    """Real data from every building outside the training sample (unseen buildings)."""
    seen = set(pd.read_csv(sample_paths[1])["building_id"])
    chosen = [b for b in dev_frames[0]["building_id"].unique() if b not in seen]
    return write_buildings(dev_frames, chosen, tmp_path_factory.mktemp("holdout"))


@pytest.fixture(scope="session")
def small_sample_paths(
    tmp_path_factory: pytest.TempPathFactory, sample_paths: tuple[Path, Path]
) -> tuple[Path, Path]:
    """The first 50 buildings of the sample, as files (other data than the sample's)."""
    frames = (pd.read_csv(sample_paths[0], low_memory=False), pd.read_csv(sample_paths[1]))
    keep = frames[0]["building_id"].unique()[:50]
    return write_buildings(frames, keep, tmp_path_factory.mktemp("small-sample"))


@pytest.fixture(scope="session")
def model_without_heads(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Path:
    """The trained model as training makes it from data without the occupants' answers: no
    ``heads.json`` nor the heads' boosters (checksummed again)."""
    import shutil

    from conforto._model.artifact import read_manifest, save_manifest
    from conforto._model.heads import HEADS, SPECS

    out = tmp_path_factory.mktemp("without-heads") / "m"
    shutil.copytree(trained_model, out)
    for name in (HEADS, *(spec.booster_file for spec in SPECS)):
        (out / name).unlink()
    save_manifest(out, read_manifest(out))
    return out


@pytest.fixture(scope="session")
def second_model(small_sample_paths: tuple[Path, Path]) -> Path:
    """Another, smaller model on other data with other folds (a different artifact)."""
    return trained(
        small_sample_paths,
        folds=2,
        search_trials=1,
        max_rounds=80,
    )


@pytest.fixture(scope="session")
def weak_model(sample_paths: tuple[Path, Path]) -> Path:
    """A deliberately weak model: the sample and folds of ``trained_model``, ten tiny steps."""
    return trained(
        sample_paths,
        folds=3,
        search_trials=1,
        max_rounds=10,
        early_stopping=5,
        learning_rate=0.002,
    )


@pytest.fixture(scope="session")
def full_model(dev_paths: tuple[Path, Path]) -> Path:
    """A model trained on all the dev data with the default search and two outer folds
    (behavioural tests): one trial would keep the search's first guess, rougher in ``ta``."""
    return trained(dev_paths, folds=2, max_rounds=300)


@pytest.fixture
def serve():
    """Start ``conforto serve`` with the given arguments; every server is stopped afterwards."""
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        server = Server(list(args), env)
        servers.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def slack() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local receiver of Slack webhook posts: its URL and what it received."""
    with slack_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Synthetic votes of ten buildings, as data files."""
    folder = tmp_path_factory.mktemp("synthetic")
    measurements, metadata = make_frames(n=600, buildings=10, seed=5)
    paths = folder / "m.csv", folder / "d.csv"
    measurements.to_csv(paths[0], index=False)
    metadata.to_csv(paths[1], index=False)
    return paths


#: The tiny models' training budget.
TINY = {"folds": 2, "search_trials": 1, "inner_folds": 2, "max_rounds": 10}


@pytest.fixture(scope="session")
def tiny_models(tiny_data: tuple[Path, Path]) -> tuple[Path, Path]:
    """A small model of synthetic votes, and a variant of it (another artifact, as far as a
    registry can tell)."""
    one = trained(tiny_data, **TINY)
    return one, variant(one, tiny_data[0].parent / "two")


@pytest.fixture(scope="session")
def tiny_challenger(tiny_data: tuple[Path, Path]) -> Path:
    """Another small model of the same votes, with another seed and budget: another booster,
    so another version than the tiny models'."""
    return trained(tiny_data, **{**TINY, "max_rounds": 14, "seed": 7})


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One real ``mlflow server`` per test session, its store in a PostgreSQL server of its own
    (the prediction log's tests reset and stop theirs) and its artifacts proxied; both stopped
    afterwards."""
    import shutil

    database = Postgres()
    database.start()
    try:
        server = mlflow_server_on(tmp_path_factory.mktemp("mlflow-server"), database.url)
        yield server
        server.stop()
    finally:
        database.stop()
        shutil.rmtree(database.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL server per test session, removed afterwards."""
    import shutil

    server = Postgres()
    server.start()
    yield server
    try:
        server.stop()
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: Postgres) -> Postgres:
    """The session's PostgreSQL server, running and empty (restarted if a test stopped it)."""
    if not postgres_server.running:
        postgres_server.start()
    postgres_server.reset()
    return postgres_server


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A prediction-log database URL: a SQLite file, then the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.url
