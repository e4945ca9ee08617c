"""The promotion gate on real models in a real MLflow registry, through the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from conforto._cli import app
from conforto._lifecycle.gate import GateConfig, run_gate
from conforto._model.artifact import load_model
from conforto._model.behaviour import behaviour_checks
from conforto._registry.model_registry import Registry, open_registry
from conforto._settings import get_settings
from conforto.errors import RegistryError

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
runner = CliRunner()

#: The sample models are small and barely beat PMV on their 30 % sample: judge them on the rest.
GATE_YAML = "gate:\n  min_gain_over_pmv: 0.0\n  slice_min_rows: 2000\n  bootstrap_reps: 400\n"


@pytest.fixture
def gate_config(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(GATE_YAML)
    return path


def _registry() -> Registry:
    return open_registry(get_settings())


def _gate(version: str, config: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    result = runner.invoke(app, ["gate", version, "--config", str(config), *extra])
    report_path = get_settings().home / "reports" / f"gate-v{version}" / "gate.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return result.exit_code, result.output, report


def test_first_model_validated_then_weaker_challenger_rejected(
    trained_model: Path, weak_model: Path, gate_config: Path
) -> None:
    registry = _registry()
    registry.register(trained_model)
    code, output, report = _gate("1", gate_config)
    assert code == 0, output
    assert report["champion"] is None
    assert "validated" in registry.store.get("1").tags
    registry.promote("1")

    registry.register(weak_model)
    code, output, report = _gate("2", gate_config)
    assert code == 1
    assert "rejected" in output
    assert report["oof_source"] == "stored"  # same data, same folds: no refit
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert "not worse than the champion in macro-F1" in failed
    tags = registry.store.get("2").tags
    assert "validated" not in tags
    assert "not worse than the champion in macro-F1" in tags["rejected"]
    listed = json.loads(runner.invoke(app, ["model", "list", "--json"]).output)
    assert "champion" in next(v for v in listed if v["version"] == "2")["rejected"]
    with pytest.raises(RegistryError, match="rejected"):
        registry.promote("2")


def test_better_challenger_validated_and_promotable(
    trained_model: Path, weak_model: Path, gate_config: Path
) -> None:
    registry = _registry()
    registry.register(weak_model)
    registry.promote("1", force=True)
    registry.register(trained_model)
    code, output, report = _gate("2", gate_config)
    assert code == 0, output
    assert report["champion"] == "1"
    gains = {c["name"]: c["value"] for c in report["checks"]}
    assert gains["not worse than the champion in macro-F1"] > 0
    move = registry.promote("2")
    assert move is not None
    assert move.to == "2"


def test_champion_refitted_on_the_challengers_folds_of_other_data(
    trained_model: Path,
    second_model: Path,
    sample_paths: tuple[Path, Path],
    small_sample_paths: tuple[Path, Path],
    gate_config: Path,
) -> None:
    registry = _registry()
    registry.register(trained_model)
    registry.promote("1", force=True)
    registry.register(second_model)
    wrong = ["--measurements", str(sample_paths[0]), "--metadata", str(sample_paths[1])]
    code, output, _ = _gate("2", gate_config, *wrong)
    assert code == 1
    assert "not the data the challenger was trained on" in output
    assert not {"validated", "rejected"} & set(registry.store.get("2").tags)  # no verdict

    right = ["--measurements", str(small_sample_paths[0]), "--metadata", str(small_sample_paths[1])]
    code, output, report = _gate("2", gate_config, *right)
    assert report["oof_source"] == "refit", output
    assert report["champion"] == "1"
    assert {"validated", "rejected"} & set(registry.store.get("2").tags)


def test_slice_regression_of_a_real_model_is_rejected(trained_model: Path) -> None:
    champion = pd.read_parquet(trained_model / "oof.parquet")
    challenger = champion.copy()
    winter = challenger["season"].eq("winter")
    challenger.loc[winter, "decision"] = 1
    # only the slice check is strict here: the others would also (rightly) see a worse model
    config = GateConfig(
        min_gain_over_pmv=-1.0, champion_margin_macro_f1=0.5, champion_margin_log_loss=0.5
    )
    behaviour = behaviour_checks(load_model(trained_model))
    report = run_gate("2", challenger, behaviour, config, champion=("1", champion))
    assert [c.name for c in report.failed] == ["no slice regresses"]
    assert "season=winter" in report.failed[0].detail
