"""Helpers the tests share: synthetic frames, data files, the CLI and the service in subprocesses,
a throwaway PostgreSQL server, model training on a small budget."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterable

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
            "timestamp": rng.choice(
                np.array(["2012-01-15T00:00:00Z", "2013-07-02T00:00:00Z", None]), n
            ),
            "season": rng.choice(["summer", "Winter", "fall"], n),
            "gender": rng.choice(np.array(["male", "female", None]), n),
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


def write_buildings(
    frames: tuple[pd.DataFrame, pd.DataFrame],
    buildings: Iterable[int],
    folder: Path,
    name: str = "measurements.csv",
) -> tuple[Path, Path]:
    """Write the rows of ``buildings`` (any collection of ids) as measurement + metadata files."""
    measurements, metadata = frames
    m, d = folder / name, folder / "metadata.csv"
    ids = list(buildings)
    measurements[measurements["building_id"].isin(ids)].to_csv(m, index=False)
    metadata[metadata["building_id"].isin(ids)].to_csv(d, index=False)
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


def train_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, paths: tuple[Path, Path], **config: Any
) -> Path:
    """Train a model on the data files ``paths`` with a small ``TrainConfig`` into a temp dir."""
    from conforto.data.load import load_dataset
    from conforto.training.save import write_model
    from conforto.training.train import TrainConfig, train_model

    out = tmp_path_factory.mktemp("models") / name
    frame = load_dataset(*paths).frame
    write_model(train_model(frame, config=TrainConfig(**config), progress=False), frame, out)
    return out


def without_file(model: Path, name: str | tuple[str, ...], out: Path) -> Path:
    """A copy of ``model`` at ``out`` without its optional file ``name`` (or files), as models
    trained before that file existed: checksummed again."""
    import json
    import shutil

    from conforto.model.artifact import MANIFEST, save_manifest

    shutil.copytree(model, out)
    for file in (name,) if isinstance(name, str) else name:
        (out / file).unlink()
    manifest = json.loads((out / MANIFEST).read_text())
    save_manifest(out, {k: v for k, v in manifest.items() if k != "files"})
    return out


def regrouped_sets(model: Path, by: str, out: Path) -> Path:
    """A copy of ``model`` at ``out`` whose prediction sets are calibrated grouped ``by``
    (on its own out-of-fold predictions), as training with ``conformal_by: by`` makes them:
    checksummed again."""
    import json
    import shutil

    import pandas as pd

    from conforto.model.artifact import MANIFEST, save_manifest
    from conforto.uncertainty.calibration import calibrate_frame
    from conforto.uncertainty.sets import CONFORMAL

    shutil.copytree(model, out)
    calibration = calibrate_frame(pd.read_parquet(out / "oof.parquet"), by=by)
    (out / CONFORMAL).write_text(json.dumps(calibration.to_dict()) + "\n")
    manifest = json.loads((out / MANIFEST).read_text())
    save_manifest(out, {k: v for k, v in manifest.items() if k != "files"})
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
            start_new_session=True,  # its own process group: see kill_all
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

    def children(self, pid: int | None = None) -> list[int]:
        """The process ids of a process's children (the server's by default)."""
        pid = pid or self.process.pid
        found = []
        for task in Path(f"/proc/{pid}/task").glob("*"):  # each thread lists what it started
            with contextlib.suppress(FileNotFoundError):
                found += [int(c) for c in (task / "children").read_text().split()]
        return found

    def kill_all(self) -> None:
        """SIGKILL the server and every process it started (an OOM kill of the container)."""
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate()

    def stop(self) -> str:
        if self.process.returncode is not None:
            return ""
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=20)
        except Exception:
            self.process.kill()
            out, _ = self.process.communicate()
        return out.decode()


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


class Daemon:
    """A program from Debian's packages on 127.0.0.1 (Prometheus, its Pushgateway, Alertmanager,
    nginx), polled until ready and stopped at teardown."""

    def __init__(self, command: list[str], ready: str, port: int, cwd: Path | None = None) -> None:
        import shutil

        if shutil.which(command[0]) is None:
            pytest.fail(f"{command[0]} not found: apt-get install it (.ci/run does)")
        import tempfile

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop(); read on failure
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=self.output, stderr=subprocess.STDOUT
        )
        self.wait(ready)

    def wait(self, path: str, timeout: float = 30.0) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.output.seek(0)
                raise RuntimeError(f"exited: {self.output.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.url}{path} did not answer in {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


def pushgateway() -> Daemon:
    """Debian's prometheus-pushgateway on a free port, keeping nothing on disk."""
    port = free_port()
    command = [
        "prometheus-pushgateway",
        f"--web.listen-address=127.0.0.1:{port}",
        "--persistence.file=",  # Debian's default persists to /var/lib/prometheus
    ]
    return Daemon(command, "/-/ready", port)


def scrape(url: str) -> dict[str, float]:
    """A Prometheus exposition as ``{'name{labels}': value}``."""
    import httpx

    found = {}
    for line in httpx.get(url, timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


LOGGED_INPUTS = ["ta", "tr", "rh", "vel", "met", "clo", "t_mot_isd", "season", "cooling_type"]


def serve_and_vote(
    url: str, model_dir: Path, frame: pd.DataFrame, voted: float, sites: bool = False
) -> int:
    """Answer ``frame``'s rooms with the model, log them over the last two days (with their
    ``building_id`` as the site when ``sites``), and log the occupants' real votes for a share
    ``voted`` of them; the number of votes."""
    import time

    from conforto.model.artifact import load_model
    from conforto.predictions.log import queued_prediction
    from conforto.predictions.store import LogDatabase
    from conforto.serving.runtime import Predictor

    predictor = Predictor(load_model(model_dir), "1")
    rows = frame[LOGGED_INPUTS].to_dict("records")
    inputs = [{str(k): v for k, v in r.items() if v is not None and v == v} for r in rows]
    answers = predictor.predict(inputs)
    now, batch = time.time(), []
    names = [f"building {b}" for b in frame["building_id"]] if sites else [None] * len(frame)
    for i, (answer, given, site) in enumerate(zip(answers, inputs, names, strict=True)):
        table, values = queued_prediction(answer, given, 1.0, site)
        batch.append((table, (values[0], now - 2 * 86_400 + 100 * i, *values[2:])))
    votes = frame["thermal_sensation"].to_numpy()
    chosen = np.random.default_rng(0).random(len(frame)) < voted
    for answer, vote in zip(np.array(answers)[chosen], votes[chosen], strict=True):
        batch.append(("feedback", (answer["prediction_id"], float(vote), now)))
    database = LogDatabase(url)
    database.write(batch)
    database.close()
    return int(chosen.sum())
