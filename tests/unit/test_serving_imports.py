"""The service's start-up budget (3 s) has no room for imports it does not need to answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _run(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_serving_code_imports_neither_pythermalcomfort_nor_numba() -> None:
    found = _run(
        "import json, sys, conforto.serving.app, conforto.features; "
        "print(json.dumps({'heavy': sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pythermalcomfort', 'numba'))}))"
    )
    assert found == {"heavy": []}


def test_service_process_keeps_scikit_learn_out_and_lightgbm_works(trained_model: Path) -> None:
    found = _run(
        "import json, sys; from conforto.serving.app import app_from_env; app_from_env(); "
        f"from conforto.artifact import load_model; m = load_model({str(trained_model)!r}); "
        "print(json.dumps({'sklearn': sys.modules.get('sklearn') is not None, "
        "'trees': m.booster.num_trees()}))"
    )
    assert found["sklearn"] is False
    assert isinstance(found["trees"], int)
    assert found["trees"] > 0
