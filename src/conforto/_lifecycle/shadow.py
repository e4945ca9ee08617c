"""The gate's ``shadow`` check: a challenger's shadow period, judged from the prediction log
when it is promoted.

With ``gate.shadow_min_predictions`` set (``configs/pipeline.yaml``), a validated version
waits: the pipeline leaves it validated, the service runs it as a shadow challenger
(``conforto serve --challenger VERSION``), and ``conforto model promote VERSION`` takes it
without ``--force`` only once it scored that many of production's requests and was never
stopped automatically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conforto._lifecycle.gate_checks import GateCheck
from conforto._monitor.compare import shadow_record
from conforto.errors import RegistryError

if TYPE_CHECKING:
    from conforto._registry.audit import Move
    from conforto._registry.model_registry import Registry


def shadow_check(url: str, names: list[str], min_predictions: int) -> GateCheck:
    """Whether the challenger known by ``names`` (its version, its content id) had its shadow
    period in the prediction log at ``url``.

    Raises
    ------
    LogUnavailable
        When the log cannot be read.
    """
    record = shadow_record(url, names)
    shadowed, stops = record.shadowed, record.stops
    detail = f"{shadowed:,} shadowed predictions (at least {min_predictions:,} needed)"
    if stops:
        detail += f"; stopped automatically: {stops[-1]}"
    return GateCheck(
        "shadow",
        "shadow",
        shadowed >= min_predictions and not stops,
        detail,
        value=float(shadowed),
        threshold=float(min_predictions),
    )


def promote(
    registry: Registry,
    version: str,
    *,
    log_url: str,
    min_predictions: int | None,
    force: bool = False,
    reason: str = "",
    command: str = "promote",
) -> Move | None:
    """:meth:`Registry.promote`, after the shadow check when one is configured.

    Parameters
    ----------
    registry
        The registry.
    version
        The version to put in production.
    log_url
        The prediction log's database.
    min_predictions
        ``gate.shadow_min_predictions``; ``None``: no shadow check.
    force, reason, command
        As :meth:`Registry.promote`'s (``force`` skips the shadow check too).

    Raises
    ------
    RegistryError
        When the shadow check fails (with what it found), or the registry refuses.
    """
    if min_predictions is not None and not force:
        from conforto._model.artifact import load_model

        target, artifact = registry.resolve(version)
        if registry.store.alias_version("production") != target.version:
            names = [target.version, load_model(artifact).version]
            check = shadow_check(log_url, names, min_predictions)
            if not check.passed:
                raise RegistryError(
                    f"version {target.version} has not had its shadow period: {check.detail}. "
                    f"Serve it as a shadow (`conforto serve --challenger {target.version}`), "
                    "or pass --force."
                )
    return registry.promote(version, force=force, reason=reason, command=command)
