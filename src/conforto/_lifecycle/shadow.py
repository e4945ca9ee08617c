"""The gate's ``shadow`` check: a challenger's shadow period, judged from the prediction log
when it is promoted.

With ``gate.shadow_min_predictions`` set (``configs/pipeline.yaml``), a validated version
waits: the pipeline leaves it validated (``conforto model promote`` exits 5,
:class:`~conforto.errors.ShadowPending`), the service runs it as a shadow challenger
(``conforto serve --challenger VERSION``; on Cloud Run, baked into the image beside production:
:func:`awaiting_shadow` says which), and ``conforto model promote VERSION`` takes it without
``--force`` only once it scored that many of occupants' requests to production and was never
stopped automatically. The first production version has nothing to shadow: it needs no shadow
period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conforto._lifecycle.gate_checks import GateCheck
from conforto._monitor.compare import shadow_record
from conforto._registry.model_registry import PRODUCTION
from conforto.errors import ShadowPending

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
    ShadowPending
        When the shadow check fails (with what it found): nothing changed.
    RegistryError
        When the registry refuses.
    """
    if min_predictions is not None and not force:
        from conforto._model.artifact import load_model

        target, artifact = registry.resolve(version)
        production = registry.store.alias_version(PRODUCTION)
        if production not in (None, target.version):
            names = [target.version, load_model(artifact).version]
            check = shadow_check(log_url, names, min_predictions)
            if not check.passed:
                raise ShadowPending(
                    f"version {target.version} has not had its shadow period: {check.detail}. "
                    f"Serve it as a shadow (`conforto serve --challenger {target.version}`; "
                    "a deploy bakes it into the image beside production), or pass --force."
                )
    return registry.promote(version, force=force, reason=reason, command=command)


def awaiting_shadow(registry: Registry) -> str | None:
    """The version waiting for its shadow period: the newest validated one, newer than
    production and never rejected or archived (``None``: none, or nothing in production).

    It is the challenger to serve beside production (a deploy bakes it into the image) while
    ``gate.shadow_min_predictions`` asks for a shadow period.
    """
    production = registry.store.alias_version(PRODUCTION)
    if production is None:
        return None
    waiting = [
        v.version
        for v in registry.versions()
        if int(v.version) > int(production)
        and "validated" in v.tags
        and not {"rejected", "archived"} & set(v.tags)
    ]
    return max(waiting, key=int, default=None)
