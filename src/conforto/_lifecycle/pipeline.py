"""The gated training pipeline: the stages of :mod:`conforto._lifecycle.stages`, chained.

``data_validation`` (load, validate, profile, physics features) → ``model_training`` →
registration → ``model_validation`` (the gate) → ``model_promotion``. :func:`run_pipeline` runs
them all; re-running it on unchanged data, code and config reuses the registered version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from conforto._data.load import fingerprint
from conforto._lifecycle.gate import GateConfig, GateReport
from conforto._lifecycle.stages import DataStageResult, data_stage, gate_stage, train_stage
from conforto._lineage import code_fingerprint, config_hash
from conforto._model.artifact import ThermalModel, load_model
from conforto._monitor.thresholds import MonitorConfig
from conforto._notify import Message, context, header, section
from conforto._registry.model_registry import PRODUCTION, training_lineage
from conforto._tracking import NullTracker, Tracker, tracked_run
from conforto._training.train import TrainConfig
from conforto.errors import ConfortoError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conforto._registry.audit import Move
    from conforto._registry.model_registry import Registry
    from conforto._tracking.model_version import ModelVersion


log = logging.getLogger(__name__)


class PipelineConfig(BaseModel):
    """The training pipeline's settings (``configs/pipeline.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    train: TrainConfig = Field(default_factory=TrainConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    tracking: list[Literal["mlflow", "clearml"]] | None = Field(
        None, description="Trackers for this pipeline; default: CONFORTO_TRACKING__BACKENDS."
    )


def find_version(registry: Registry, data_sha256: str, config: TrainConfig) -> ModelVersion | None:
    """The registered version trained on this data, with this config and this code, if any."""
    lineage = training_lineage(data_sha256, config_hash(config.model_dump()), code_fingerprint())
    return registry.same_training(lineage)


@dataclass
class PipelineResult:
    """What a pipeline run did."""

    data: DataStageResult
    version: str | None = None
    reused: bool = False
    gate: GateReport | None = None
    gate_paths: dict[str, Path] = field(default_factory=dict)
    promoted: Move | None = None
    production: str | None = None
    model_dir: Path | None = None


def production_model(registry: Registry) -> tuple[ThermalModel, str] | None:
    """The production model and its version; ``None`` when there is none, or it cannot be
    loaded (the data stage then checks no drift, and says so).
    """
    version = registry.store.alias_version("production")
    if version is None:
        return None
    try:
        _, artifact = registry.resolve(version)
        return load_model(artifact, verify=False), version  # resolve verified every file
    except ConfortoError as exc:
        log.warning("production version %s cannot be loaded: %s", version, exc)
        return None


@dataclass
class _Stages:
    """What every stage of one pipeline run shares."""

    registry: Registry
    home: Path
    config: PipelineConfig
    tracker: Tracker
    outbox: Path | None
    notify: Callable[[str], None]
    progress: bool


def run_pipeline(
    registry: Registry,
    measurements: Path,
    metadata: Path | None,
    home: Path,
    config: PipelineConfig,
    *,
    tracker: Tracker | None = None,
    outbox: Path | None = None,
    force: bool = False,
    notify: Callable[[str], None] = lambda _: None,
    progress: bool = True,
    extra: Path | None = None,
) -> PipelineResult:
    """Validate data → profile → train → register → gate → promote if validated.

    Parameters
    ----------
    registry
        The model registry (versions, tags, production alias).
    measurements, metadata
        Data files.
    home
        ``CONFORTO_HOME``: reports go to ``home/reports``, the model to ``home/models/latest``.
    config
        Training and gate settings.
    tracker, outbox
        Where each stage records its run, and where failed tracker calls are kept.
    force
        Train anew even when a version with the same data, code and config exists.
    notify
        Called with a line of text as each stage starts or decides something.
    progress
        Show progress bars while training.
    extra
        More training rows (exported occupants' votes), validated and grouped like the rest.

    Returns
    -------
    PipelineResult
        Stops after the data stage when validation fails (``data.validation.ok`` is False).
    """
    stages = _Stages(registry, home, config, tracker or NullTracker(), outbox, notify, progress)
    notify("data stage: load, validate, profile, features, drift against production")
    data = data_stage(
        measurements,
        metadata,
        home / "reports",
        tracker=tracker,
        outbox=outbox,
        production=production_model(registry),
        monitor=config.monitor,
        extra=extra,
    )
    result = PipelineResult(data)
    if not data.validation.ok:
        return result
    sources = {"measurements": str(measurements), "metadata": str(metadata)}
    if extra is not None:
        sources["extra"] = str(extra)
    _train_or_reuse(stages, result, force=force, sources=sources)
    _gate(stages, result)
    _promote(stages, result)
    result.production = registry.store.alias_version("production")
    return result


def _train_or_reuse(
    stages: _Stages, result: PipelineResult, *, force: bool, sources: dict[str, str]
) -> None:
    """Reuse the version trained on this data, code and config, or train and register one."""
    frame = result.data.frame
    existing = (
        None if force else find_version(stages.registry, fingerprint(frame), stages.config.train)
    )
    if existing is not None:
        stages.notify(f"unchanged data, code and config: reusing version {existing.version}")
        result.version, result.reused = existing.version, True
        return
    target = stages.home / "models" / "latest"
    stages.notify("training: building-grouped cross-validation, then the final model")
    train_stage(
        frame,
        target,
        config=stages.config.train,
        tracker=stages.tracker,
        outbox=stages.outbox,
        sources=sources,
        votes=result.data.votes,
        progress=stages.progress,
    )
    registered = stages.registry.register(target, force=force).version
    result.version, result.model_dir = registered.version, target
    stages.notify(f"registered version {registered.version}")


def _gate(stages: _Stages, result: PipelineResult) -> None:
    """Gate a new version (or a reused one that never was)."""
    assert result.version is not None  # noqa: S101 - set by _train_or_reuse
    version = stages.registry.store.get(result.version)
    if result.reused and {"validated", "rejected"} & set(version.tags):
        return
    stages.notify(f"gate: version {result.version} against the baselines and the champion")
    result.gate, result.gate_paths = gate_stage(
        stages.registry,
        result.version,
        stages.config.gate,
        stages.home / "reports" / f"gate-v{result.version}",
        data=lambda: result.data.frame,
        tracker=stages.tracker,
        outbox=stages.outbox,
        progress=stages.progress,
    )


def _promote(stages: _Stages, result: PipelineResult) -> None:
    """Make a validated version production, unless it has been production before."""
    assert result.version is not None  # noqa: S101 - set by _train_or_reuse
    version = stages.registry.store.get(result.version)
    if "validated" not in version.tags or {"production", "archived"} & set(version.tags):
        return
    shadowed = stages.config.gate.shadow_min_predictions is not None
    if shadowed and stages.registry.store.alias_version(PRODUCTION) is not None:
        stages.notify(
            f"version {version.version} waits for its shadow period before production: "
            f"`conforto serve --challenger {version.version}`, then `conforto model promote "
            f"{version.version}`"
        )
        return
    with tracked_run(
        stages.tracker, "model_promotion", {"stage": "promote"}, outbox=stages.outbox
    ) as run:
        result.promoted = stages.registry.promote(
            result.version, reason="validated by the gate", command="conforto pipeline run"
        )
        run.log_params({"version": result.version})
        run.set_tags({"production": result.version})


def pipeline_message(
    version: str | None, gate: GateReport | None, production: str | None
) -> Message:
    """The training pipeline finished: validated or rejected, the metrics, the failed checks."""
    if gate is None:
        verdict, icon = f"version {version} reused (already judged)", ":recycle:"
    elif gate.passed:
        verdict, icon = f"version {version} validated", ":white_check_mark:"
    else:
        verdict, icon = f"version {version} rejected", ":x:"
    blocks = [header(f"Training pipeline: {verdict}")]
    if gate is not None:
        rows = []
        for name, m in gate.compared().items():
            cells = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in m.items())
            label = f"champion (v{gate.champion})" if name == "champion" else name
            rows.append(f"• *{label.replace('_', ' ')}*: {cells}")
        blocks.append(section("\n".join(rows)))
        failed = [f"• {c.name}: {c.detail}" for c in gate.failed]
        if failed:
            blocks.append(section("*Failed checks*\n" + "\n".join(failed)))
    blocks.append(context(f"production version: {production or 'none'}"))
    return Message("pipeline", f"{icon} conforto training pipeline: {verdict}", blocks)
