"""What the tests build once per run: trained models and a migrated MLflow store.

Each is cached on disk under a fingerprint of what it depends on (the package's code, the
data's content, the training configuration, the versions of the packages that shape it), behind
a file lock: every pytest worker and session of a run (``make test``, ``test-image``,
``test-spark``, ``test-workflows``) shares one build. The cache is ``build/test-cache`` in the
checkout, or ``CONFORTO_TEST_CACHE``; nothing outdated is reused, since any change makes
another fingerprint.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from tests.factories import REPO

if TYPE_CHECKING:
    from collections.abc import Callable

#: Where what the tests build is kept between sessions of a run.
CACHE = Path(os.environ.get("CONFORTO_TEST_CACHE", REPO / "build" / "test-cache"))
#: The site adaptation strength [votes] a test model's replay is given, alone: choosing one
#: among candidates replays every fold once per candidate (six by default, a quarter of a small
#: training's time). tests/unit/test_adaptation.py judges the choice; the other tests need a
#: model that adapts, not the search.
ONE_STRENGTH = (5.0,)


def cached(key: str, make: Callable[[Path], None]) -> Path:
    """The folder ``CACHE/key``, made by ``make(folder)`` the first time (while other workers
    wait for it): whole or not at all, since ``make`` fills a temporary folder renamed after."""
    folder = CACHE / key
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(CACHE / f"{key}.lock"):
        if not folder.is_dir():
            tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix=f".{key}."))
            try:
                make(tmp / "made")
                (tmp / "made").rename(folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _content(path: Path) -> bytes:
    """A data file's content; a gzip file's uncompressed (its header holds a write time)."""
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def fingerprint(paths: tuple[Path, Path], config: dict[str, Any]) -> str:
    """What a model trained on the data files ``paths`` with ``TrainConfig(**config)`` depends
    on, as a short hex digest."""
    from conforto._lineage import code_fingerprint, package_versions
    from conforto._training.train import TrainConfig

    digest = hashlib.sha256(code_fingerprint().encode())
    digest.update(json.dumps(package_versions(), sort_keys=True).encode())
    digest.update(TrainConfig(**config).model_dump_json().encode())
    for path in paths:
        digest.update(hashlib.sha256(_content(path)).digest())
    return digest.hexdigest()[:20]


def trained(paths: tuple[Path, Path], **config: Any) -> Path:
    """A model trained on the data files ``paths`` with ``TrainConfig(**config)`` (its site
    adaptation strength :data:`ONE_STRENGTH` unless ``config`` gives candidates).

    The folder is shared: a test that changes a model works on a copy. Every file is checked
    against the manifest on the way out, so a test that changed the shared one fails here.
    """
    from conforto._model.artifact import load_model

    config = {"adaptation_strengths": ONE_STRENGTH, **config}

    def train(folder: Path) -> None:
        from conforto._data.load import load_dataset
        from conforto._training.save import write_model
        from conforto._training.train import TrainConfig, train_model

        frame = load_dataset(*paths).frame
        write_model(train_model(frame, config=TrainConfig(**config), progress=False), frame, folder)

    folder = cached(f"model-{fingerprint(paths, config)}", train)
    load_model(folder)
    return folder


def migrated_store() -> Path:
    """A ``CONFORTO_HOME`` whose embedded MLflow store has its schema made (MLflow's
    migrations take seconds on every new store), for each test's home to start from."""
    from importlib.metadata import version

    def migrate(home: Path) -> None:
        from conforto._tracking.mlflow_store import MlflowRegistryStore

        uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
        MlflowRegistryStore(uri, "conforto-thermal-sensation").versions()

    return cached(f"mlflow-store-{version('mlflow-skinny')}", migrate)
