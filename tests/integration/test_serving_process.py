"""The service's start-up budget (3 s) has no room for imports it does not need to answer."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conforto._predictions.schema import predictions
from tests.factories import table_rows

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def _run(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_serving_code_imports_neither_pythermalcomfort_nor_numba() -> None:
    found = _run(
        "import json, sys, conforto._serving.app, conforto._physics.features; "
        "print(json.dumps({'heavy': sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pythermalcomfort', 'numba'))}))"
    )
    assert found == {"heavy": []}


def test_service_process_keeps_scikit_learn_pandas_and_crepes_out_and_lightgbm_works(
    trained_model: Path,
) -> None:
    found = _run(
        "import json, sys; from conforto._serving.app import app_from_env; app_from_env(); "
        f"from conforto._model.artifact import load_model; m = load_model({str(trained_model)!r}); "
        "from conforto._serving.runtime import Predictor; "
        "room = dict(ta=24.0, rh=50.0, vel=0.1, met=1.1, clo=0.6, climate='tropical savanna'); "
        "answer = Predictor(m, '1').predict([room])[0]; "
        "print(json.dumps({'sklearn': sys.modules.get('sklearn') is not None, "
        "'pandas': sys.modules.get('pandas') is not None, 'trees': m.booster.num_trees(), "
        "'crepes': 'crepes' in sys.modules, 'set': answer.prediction_set}))"
    )
    assert found["sklearn"] is False
    assert found["pandas"] is False  # the image does not even install it
    assert found["crepes"] is False  # sets are applied with NumPy
    assert found["set"]
    assert isinstance(found["trees"], int)
    assert found["trees"] > 0


CHILDREN = """
import gc, json, os, sys, time
from fastapi.testclient import TestClient
from conforto._serving.app import app_from_env

def children():  # command line -> niceness of this process's children
    found = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            stat = open(f'/proc/{pid}/stat').read()
            cmdline = open(f'/proc/{pid}/cmdline').read().replace(chr(0), ' ')
        except OSError:
            continue
        fields = stat.rsplit(')', 1)[1].split()
        if int(fields[1]) == os.getpid():
            found[cmdline] = int(fields[16])
    return found

def written(client):
    for line in client.get('/metrics').text.splitlines():
        if line.startswith('conforto_prediction_log_writes_total{table="predictions"}'):
            return float(line.split()[-1])
    return 0.0

with TestClient(app_from_env()) as client:
    status = client.post('/predict', json=dict(ta=24.0, rh=50.0, vel=0.1, met=1.1, clo=0.6))
    # the child lowers its priority as it starts, then writes the row: on cores busy with other
    # work a process at niceness 19 may wait many seconds for its turn
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        writers = children()
        if written(client) == 1 and any(nice == 19 for nice in writers.values()):
            break
        time.sleep(0.1)
    stored, sqlalchemy = written(client), 'sqlalchemy' in sys.modules
    tuned = gc.get_threshold()[0], gc.get_freeze_count() > 0
print(json.dumps({'status': status.status_code, 'writers': writers, 'stored': stored,
                  'sqlalchemy': sqlalchemy, 'tuned': tuned}))
"""


def test_prediction_log_is_written_by_a_low_priority_child_process(
    trained_model: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("CONFORTO_SERVE__MODEL_DIR", str(trained_model))
    monkeypatch.setenv("CONFORTO_SERVE__LOG_URL", url)
    found = _run(CHILDREN)
    assert found["status"] == 200
    assert found["stored"] == 1
    assert found["sqlalchemy"] is False  # the service process never loaded the database code
    assert found["tuned"] == [10_000, True]  # the process entry's GC tuning
    writers = found["writers"]
    assert isinstance(writers, dict)
    assert [
        nice for command, nice in writers.items() if "conforto._predictions.writer" in command
    ] == [19]
    assert len(table_rows(url, predictions)) == 1
