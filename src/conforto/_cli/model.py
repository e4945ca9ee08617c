"""``conforto model``: the registry: register, list, show, promote, roll back, upgrade, audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conforto._cli import render
from conforto._cli.common import (
    console,
    err_console,
    errors,
    fail,
    open_registry,
    pipeline_config,
    stage_run,
    stdout_to_stderr,
)
from conforto._cli.notify import tell
from conforto._registry.audit import move_message
from conforto._settings import Settings, get_settings

if TYPE_CHECKING:
    from conforto._lifecycle.pipeline import PipelineConfig

app = typer.Typer(
    help="The model registry: register, list, promote, roll back.", no_args_is_help=True
)
ReasonOpt = Annotated[str, typer.Option(help="Why, for the audit log.")]
ShadowConfigOpt = Annotated[
    Path | None,
    typer.Option(
        help="Pipeline config whose gate may ask for a shadow period "
        "(shadow_min_predictions). Default: configs/pipeline.yaml when present."
    ),
]


def _pipeline(config: Path | None) -> PipelineConfig:
    """The pipeline config given, else ``configs/pipeline.yaml`` when present, else defaults."""
    default = Path("configs/pipeline.yaml")
    return pipeline_config(config or (default if default.is_file() else None))


@app.command("register")
def register(
    directory: Annotated[Path, typer.Argument(help="Model directory from `conforto train`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the version as JSON.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Register it even when a version was trained on the same data, code and "
            "configuration.",
        ),
    ] = False,
) -> None:
    """Add a trained model as a new version (tag `training`, with lineage). Nothing new is
    registered for a model trained on the same data, code and configuration as a registered
    version (rejected ones included): that version is printed, and the exit code is 0. The JSON
    says whether it was created, unchanged (that earlier version) and judged (by a gate).
    """
    with errors(), stdout_to_stderr():
        version, created, unchanged = open_registry().register(directory, force=force)
    if as_json:
        answer = {
            "version": version.version,
            "created": created,
            "unchanged": unchanged,
            "judged": version.judged,
        }
        typer.echo(json.dumps(answer))
        return
    if unchanged:
        console.print(
            f"nothing new: version {version.version} was trained on the same data, code and "
            f"configuration ({', '.join(version.lifecycle) or 'no tags'}); --force registers "
            "it anyway",
            highlight=False,
        )
        if not version.judged:
            console.print(f"not judged yet: `conforto gate {version.version}`", highlight=False)
        return
    verb = "registered" if created else "already registered"
    console.print(f"{verb}: version {version.version} ({directory})", highlight=False)


@app.command("download")
def download(
    version: Annotated[str, typer.Argument(help="Version number or 'production'.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to create with the artifact.")],
) -> None:
    """Copy a version's artifact (verified against its checksums) into a folder of its own,
    with the version's number beside it (``registered.json``: what an image built from the
    folder and a service serving it report).
    """
    import shutil

    from conforto._registry.registration import write_registration

    with errors():
        found, artifact = open_registry().resolve(version)
        if out.exists():
            raise fail(f"{out} already exists: choose another --out.")
        shutil.copytree(artifact, out)
        write_registration(out, found.version, get_settings().tracking.model_name)
    console.print(f"version {found.version}: {out}", highlight=False)


@app.command("list")
def list_versions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every version with its lifecycle tags; production is marked."""
    from conforto._registry.version_index import indexed_versions

    with errors(), stdout_to_stderr():
        found = indexed_versions(get_settings())
        if found is None:
            found = open_registry().versions()
    if as_json:
        typer.echo(json.dumps([v.record() for v in found], indent=2))
    else:
        render.versions(found)


@app.command("show")
def show(version: Annotated[str, typer.Argument(help="Version number or 'production'.")]) -> None:
    """Show one version: tags, lineage, metrics, artifact and its verified local copy."""
    from conforto._registry.version_index import indexed_version

    with errors(), stdout_to_stderr():
        found, artifact = indexed_version(get_settings(), version) or open_registry().resolve(
            version
        )
    typer.echo(json.dumps({**found.record(), "local_artifact": str(artifact)}, indent=2))


@app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="Version to put in production.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Promote even if not validated (or not shadowed)."),
    ] = False,
    reason: ReasonOpt = "",
    config: ShadowConfigOpt = None,
) -> None:
    """Make a version the production version (only `validated` ones, unless --force; after
    its shadow period when the gate asks for one: until then, exit code 5 and nothing changes).
    """
    from conforto._lifecycle.shadow import promote as promote_after_shadow

    with errors():
        cfg = _pipeline(config)
        with stage_run("model_promotion", "promote", cfg.tracking) as run:
            run.log_params({"version": version, "force": force, "reason": reason})
            move = promote_after_shadow(
                open_registry(),
                version,
                log_url=get_settings().prediction_log_url,
                min_predictions=cfg.gate.shadow_min_predictions,
                force=force,
                reason=reason,
                command="conforto model promote",
            )
            run.set_tags({"production": move.to if move else version})
    if move is None:
        console.print(f"version {version} already is in production")
    else:
        console.print(f"production: version {move.previous or '-'} → {move.to}", highlight=False)
        tell(move_message(move))


@app.command("challenger")
def challenger(config: ShadowConfigOpt = None) -> None:
    """Print the version waiting for its shadow period (nothing when none): the newest
    validated version newer than production, while the gate asks for a shadow period. It is
    the challenger a deploy bakes into the image beside production, scoring its requests.
    """
    from conforto._lifecycle.shadow import awaiting_shadow

    with errors(), stdout_to_stderr():
        asked = _pipeline(config).gate.shadow_min_predictions
        waiting = None if asked is None else awaiting_shadow(open_registry())
    if waiting is not None:
        typer.echo(waiting)
    elif asked is None:
        err_console.print("no challenger: the gate asks for no shadow period")
    else:
        err_console.print("no challenger: no validated version newer than production")


@app.command("rollback")
def rollback(reason: ReasonOpt = "") -> None:
    """Put back the previous production version (repeat to keep stepping back)."""
    with errors():
        move = open_registry().rollback(reason=reason, command="conforto model rollback")
    console.print(f"production: version {move.previous} → {move.to}", highlight=False)
    tell(move_message(move))


@app.command("upgrade")
def upgrade(
    versions: Annotated[
        list[str] | None,
        typer.Argument(help="Versions to upgrade (or --all, or --dir).", show_default=False),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Upgrade every version.")] = False,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Upgrade a model folder instead (not registered)."),
    ] = None,
) -> None:
    """Bring models from earlier releases up to this one: artifact format 2 (the manifest
    rewritten, every other file as it was) and, for registered versions, an MLflow Model
    (MLmodel, signature, environment); audited.
    """
    from conforto._model.artifact import upgrade_format
    from conforto._model.manifest import FORMAT_VERSION
    from conforto._registry.upgrade import upgrade as upgrade_versions

    if sum((bool(versions), every, directory is not None)) != 1:
        raise fail("name the versions to upgrade, or pass --all, or --dir DIR (one of them).")
    with errors():
        if directory is not None:
            changed = upgrade_format(directory)
            state = "now" if changed else "already"
            console.print(f"{directory}: {state} artifact format {FORMAT_VERSION}", highlight=False)
            return
        upgraded = upgrade_versions(
            open_registry(), versions or (), command="conforto model upgrade"
        )
    if upgraded:
        console.print(f"upgraded: version {', '.join(upgraded)}", highlight=False)
    else:
        console.print("nothing to upgrade: every version named already is up to date")


@app.command("push-registry")
def push_registry(
    to: Annotated[
        str | None,
        typer.Option("--to", help="The tracking server (default: CONFORTO_TRACKING__URI)."),
    ] = None,
) -> None:
    """Copy this machine's embedded registry (versions, tags, gate reports, audit log,
    production) to a tracking server, to move from the embedded mode to the server mode.
    """
    from conforto._registry.model_registry import open_registry as open_store
    from conforto._registry.push import push_registry as push

    settings = get_settings()
    server = to or settings.tracking.uri
    if not server:
        raise fail("name the server: --to http://HOST:5000, or set CONFORTO_TRACKING__URI.")

    def at(uri: str | None) -> Settings:
        return settings.model_copy(
            update={"tracking": settings.tracking.model_copy(update={"uri": uri})}
        )

    with errors(), stdout_to_stderr():
        pushed = push(open_store(at(None)), open_store(at(server)))
    numbers = ", ".join(f"{k} → {v}" for k, v in pushed.versions.items()) or "none"
    console.print(
        f"pushed to {server}: versions {numbers}; {pushed.moves} audit moves written; "
        f"production: {pushed.production or '-'}. Set CONFORTO_TRACKING__URI={server} from now on.",
        highlight=False,
    )


@app.command("audit")
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the audit log of promotions, rollbacks, reconciliations and upgrades (the server's,
    with a tracking URI: every machine's).
    """
    with errors(), stdout_to_stderr():
        moves = open_registry().audit()
    if as_json:
        typer.echo(json.dumps([m.to_json() for m in moves], indent=2))
    else:
        render.audit(moves)
