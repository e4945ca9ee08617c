"""Shared fixtures: synthetic frames, the real data (and a building-grouped sample), a temp home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conforto.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_frames(
    n: int = 60, buildings: int = 6, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small, valid measurements table and its metadata table, in the database's format."""
    rng = np.random.default_rng(seed)
    ta = rng.uniform(18, 32, n)
    measurements = pd.DataFrame(
        {
            "record_id": np.arange(1, n + 1),
            "building_id": rng.integers(1, buildings + 1, n),
            "timestamp": rng.choice(["2012-01-15T00:00:00Z", "2013-07-02T00:00:00Z", None], n),
            "season": rng.choice(["summer", "Winter", "fall"], n),
            "gender": rng.choice(["male", "female", None], n),
            "age": rng.uniform(20, 60, n).round(),
            "ta": ta.round(1),
            "tr": (ta + rng.normal(0, 1, n)).round(1),
            "rh": rng.uniform(30, 70, n).round(),
            "vel": rng.uniform(0.05, 0.4, n).round(2),
            "met": rng.uniform(1.0, 1.4, n).round(2),
            "clo": rng.uniform(0.4, 1.0, n).round(2),
            "thermal_sensation": np.clip(np.round((ta - 25) / 3 + rng.normal(0, 0.7, n)), -3, 3),
            "t_mot_isd": rng.uniform(12, 28, n).round(1),
        }
    )
    metadata = pd.DataFrame(
        {
            "building_id": np.arange(1, buildings + 1),
            "climate": rng.choice(
                ["hot arid", "Desert (hot arid)", "humid subtropical"], buildings
            ),
            "building_type": rng.choice(["office", "classroom"], buildings),
            "cooling_type": rng.choice(["air conditioned", "naturally ventilated"], buildings),
            "country": "brazil",
        }
    )
    return measurements, metadata


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
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary CONFORTO_HOME and working directory, so tests never write outside tmp_path."""
    path = tmp_path / "home"
    monkeypatch.setenv("CONFORTO_HOME", str(path))
    monkeypatch.chdir(tmp_path)
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


def write_buildings(
    frames: tuple[pd.DataFrame, pd.DataFrame],
    buildings: object,
    folder: Path,
    name: str = "measurements.csv",
) -> tuple[Path, Path]:
    """Write the rows of ``buildings`` (any collection of ids) as measurement + metadata files."""
    measurements, metadata = frames
    m, d = folder / name, folder / "metadata.csv"
    measurements[measurements["building_id"].isin(buildings)].to_csv(m, index=False)
    metadata[metadata["building_id"].isin(buildings)].to_csv(d, index=False)
    return m, d


def conforto_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m conforto ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "conforto", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


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


def train_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, paths: tuple[Path, Path], **config: Any
) -> Path:
    """Train a model on the data files ``paths`` with a small ``TrainConfig`` into a temp dir."""
    from conforto.data import load_dataset
    from conforto.train import TrainConfig, train_model

    out = tmp_path_factory.mktemp("models") / name
    train_model(load_dataset(*paths).frame, out, config=TrainConfig(**config), progress=False)
    return out


def table_rows(url: str, table: Any) -> list[dict[str, Any]]:
    """Every row of a SQLAlchemy table in the database at ``url``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table))]
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def trained_model(
    tmp_path_factory: pytest.TempPathFactory, sample_paths: tuple[Path, Path]
) -> Path:
    """A model trained once per session on the building-grouped sample, with a small budget."""
    return train_once(
        tmp_path_factory, "sample-model", sample_paths, folds=3, search_trials=2, max_rounds=300
    )


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
def second_model(
    tmp_path_factory: pytest.TempPathFactory, small_sample_paths: tuple[Path, Path]
) -> Path:
    """Another, smaller model on other data with other folds (a different artifact)."""
    return train_once(
        tmp_path_factory,
        "second-model",
        small_sample_paths,
        folds=2,
        search_trials=1,
        max_rounds=80,
    )


@pytest.fixture(scope="session")
def weak_model(tmp_path_factory: pytest.TempPathFactory, sample_paths: tuple[Path, Path]) -> Path:
    """A deliberately weak model: the sample and folds of ``trained_model``, ten tiny steps."""
    return train_once(
        tmp_path_factory,
        "weak-model",
        sample_paths,
        folds=3,
        search_trials=1,
        max_rounds=10,
        early_stopping=5,
        learning_rate=0.002,
    )


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CONFORTO_HOME whose embedded MLflow store has its schema created (done once: slow)."""
    from conforto.tracking.mlflow import MlflowRegistryStore

    home = tmp_path_factory.mktemp("template") / "home"
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    MlflowRegistryStore(uri, "conforto-thermal-sensation").versions()
    return home


@pytest.fixture
def registry_home(store_template: Path, home: Path) -> Path:
    """A fresh copy of the template store as this test's CONFORTO_HOME."""
    import shutil

    shutil.copytree(store_template, home)
    return home


@pytest.fixture(scope="session")
def full_model(tmp_path_factory: pytest.TempPathFactory, dev_paths: tuple[Path, Path]) -> Path:
    """A model trained on all the dev data with the default search and two outer folds
    (behavioural tests): one trial would keep the search's first guess, rougher in ``ta``."""
    return train_once(tmp_path_factory, "full-model", dev_paths, folds=2, max_rounds=300)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``conforto serve`` in a subprocess, on 127.0.0.1, stopped at teardown."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conforto", "serve", "--port", str(self.port), *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.process.communicate()[0].decode()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def stop(self) -> str:
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=20)
        except Exception:
            self.process.kill()
            out, _ = self.process.communicate()
        return out.decode()


@pytest.fixture
def serve():  # type: ignore[no-untyped-def]
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


class Postgres:
    """A throwaway PostgreSQL server from the PostgreSQL binaries, on 127.0.0.1.

    PostgreSQL refuses to run as root: as root, every command runs as the ``postgres`` user
    (``runuser``), on a data folder that user owns.
    """

    def __init__(self) -> None:
        import shutil
        import tempfile

        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        initdb = bins[0] if bins else shutil.which("initdb")
        if initdb is None:
            pytest.fail("PostgreSQL not found: apt-get install postgresql (.ci/run does)")
        self.bin = Path(initdb).parent
        self.root = Path(tempfile.mkdtemp(prefix="conforto-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.run(
            "initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, tool: str, *args: str, check: bool = True) -> int:
        import subprocess

        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")
        return done.returncode

    @property
    def running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.root / "data"), "status", check=False) == 0

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def reset(self) -> None:
        """Drop the prediction log's tables (each test starts from an empty database)."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()


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
