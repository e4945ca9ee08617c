"""``conforto smoke``: check a running service against the model it should serve."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from conforto._cli.common import console, errors, fail, open_registry
from conforto._cli.notify import tell
from conforto._deploy.local import Outcome
from conforto._settings import get_settings


def smoke(
    url: Annotated[str, typer.Argument(help="The service's base URL, e.g. http://127.0.0.1:8080.")],
    model: Annotated[
        str, typer.Option("--model", help="Model directory, or 'production' (by its pointer).")
    ] = "production",
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each answer.", min=0.1)
    ] = 10.0,
) -> None:
    """Check a running service: /health, /ready, and the model's golden predictions.

    Exits 0 when it passes, 1 with the reason when not.
    """
    from conforto._cli.monitor import served_model
    from conforto._deploy.smoke import smoke as check
    from conforto._model.artifact import load_model

    with errors():
        directory, _ = served_model(model)
        result = check(url, load_model(directory), timeout=timeout)
    if not result.passed:
        raise fail(f"smoke test failed: {result.reason}")
    console.print(f"smoke test passed: {result.reason}", highlight=False)


app = typer.Typer(
    help="Deploy: blue/green on this machine behind nginx, status, rollback, stop.",
    no_args_is_help=True,
)
EnvOpt = Annotated[str, typer.Option("--env", help="staging or production.")]


def _deployer() -> Any:
    from conforto._deploy.local import LocalDeployer

    registry = open_registry()

    def resolve(version: str) -> tuple[str, Path]:
        found, artifact = registry.resolve(version)
        return found.version, artifact

    settings = get_settings()
    return LocalDeployer(settings.home, settings.deploy, resolve), registry


def _announce(outcome: Any, registry: Any) -> None:
    """Tag, track and notify a deploy; print its line; exit 1 when it rolled back."""
    from conforto._deploy.local import deploy_message
    from conforto._lineage import git_commit
    from conforto._tracking import make_tracker, tracked_run

    settings = get_settings()
    if outcome.ok:
        sha = (git_commit() or "unknown")[:12]
        registry.tag(outcome.version, f"deployed-{sha}", f"{outcome.environment} {outcome.time}")
    with tracked_run(
        make_tracker(settings), "deployment", {"stage": "deploy"}, outbox=settings.tracking_outbox
    ) as run:
        run.log_params({k: str(v) for k, v in asdict(outcome).items()})
        run.set_tags({"environment": outcome.environment, "ok": str(outcome.ok).lower()})
    tell(deploy_message(outcome.environment, outcome.version, ok=outcome.ok, detail=outcome.reason))
    if not outcome.ok:
        raise fail(outcome.line())
    console.print(outcome.line(), highlight=False)


@app.command("local")
def local(
    env: EnvOpt,
    version: Annotated[
        str, typer.Option("--version", help="Registered version, or 'production'.")
    ] = "production",
    force: Annotated[
        bool, typer.Option("--force", help="Production: take a version that skipped staging.")
    ] = False,
) -> None:
    """Deploy a version to staging or production: the idle slot, /ready, smoke, switch, drain.

    Any failed step leaves the old version serving, says why and exits 1.
    """
    with errors():
        deployer, registry = _deployer()
        outcome = deployer.deploy(env, version, force=force)
        _announce(outcome, registry)


@app.command("rollback")
def rollback(env: EnvOpt) -> None:
    """Deploy again the version that served before the current one."""
    with errors():
        deployer, registry = _deployer()
        _announce(deployer.rollback(env), registry)


@app.command("status")
def status() -> None:
    """Each environment's slots: which serves, its version, port, pid and health."""
    with errors():
        deployer, _ = _deployer()
        rows = deployer.status()
    table = Table(title="deploys")
    for col in ("environment", "slot", "serving", "version", "port", "pid", "nginx", "healthy"):
        table.add_column(col)
    for r in rows:
        cells = [r.version, r.port, r.pid, r.nginx]
        table.add_row(
            r.environment,
            r.slot,
            "●" if r.active else "",
            *(str(c) if c else "-" for c in cells),
            "yes" if r.healthy else "no",
        )
    console.print(table if rows else "nothing deployed")


@app.command("stop")
def stop(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
) -> None:
    """Stop the slots and nginx (of every environment without --env)."""
    with errors():
        deployer, _ = _deployer()
        stopped = deployer.stop(env)
    console.print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@app.command("cloudrun")
def cloudrun(
    env: EnvOpt,
    image: Annotated[
        str | None,
        typer.Option(help="The image by digest: REGISTRY/conforto@sha256:<64 hex digits>."),
    ] = None,
    version: Annotated[
        str, typer.Option("--version", help="The registered version baked into the image.")
    ] = "production",
    challenger: Annotated[
        str,
        typer.Option(
            help="The registered version of the challenger baked into the image beside it (the "
            "label io.conforto.challenger.version, which the image job outputs): the revision "
            "runs it as a shadow. Empty: none.",
        ),
    ] = "",
    canary: Annotated[
        int | None,
        typer.Option(
            help="Send this share of the traffic [%] first, smoke-test, then all.", min=1, max=99
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Google Cloud project (CONFORTO_DEPLOY__GCP_PROJECT).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Region (CONFORTO_DEPLOY__REGION).")] = None,
    manifests: Annotated[Path, typer.Option(help="Folder of the services' manifests.")] = Path(
        "deploy/cloudrun"
    ),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the manifest and the commands; run nothing.")
    ] = False,
) -> None:
    """Deploy the image to Cloud Run: a new revision without traffic, smoke test, [canary,]
    all traffic; any failure puts the traffic back on the previous revision (exit 1).
    """
    from conforto._deploy.cloudrun import CloudRunDeploy, Gcloud, check_target, plan, roll_out

    settings = get_settings()
    project = project or settings.deploy.gcp_project
    region = region or settings.deploy.region
    with errors():
        if dry_run:
            steps = plan(
                env,
                manifests,
                image=image or "IMAGE@sha256:DIGEST",
                version=_registered(version),
                project=project or "PROJECT_ID",
                region=region,
                previous="PREVIOUS_REVISION",
                canary=canary,
                manifest_path=Path(f"{env}.yaml"),
                invoker=settings.deploy.invoker,
                shadow=bool(challenger),
            )
            typer.echo(steps.text())
            return
        image, project = check_target(image, project, region)
        _check_baked(version, challenger)
        registry = open_registry()
        found, artifact = registry.resolve(version)
        runner = CloudRunDeploy(
            Gcloud(),
            lambda url: _smoke(url, artifact, found.version, challenger or None),
            region,
            project,
        )
        target = settings.home / "deploy" / "cloudrun" / f"{env}.yaml"
        done = roll_out(
            runner,
            env,
            manifests,
            target,
            image=image,
            version=found.version,
            canary=canary,
            invoker=settings.deploy.invoker,
            shadow=bool(challenger),
        )
        outcome = Outcome(
            f"cloudrun/{env}",
            found.version,
            done.succeeded,
            done.summary,
            done.plan.revision,
            None,
            done.previous,
        )
        _announce(outcome, registry)
        _watch(done.plan.service, env, manifests / "alerts", project, target.parent / "alerts")


def _check_baked(version: str, challenger: str) -> None:
    """The versions baked into the image, as the deploy was given them (its labels)."""
    if not version.strip():
        raise fail(
            "--version is empty: give the registered version baked into the image (the "
            "label io.conforto.model.version, which the image job outputs), or 'production'."
        )
    if challenger and not challenger.isdigit():
        raise fail(
            f"--challenger {challenger!r} is not a version number: give the label "
            "io.conforto.challenger.version of the image (empty when it has none)."
        )


def _watch(service: str, env: str, policies: Path, project: str, out: Path) -> None:
    """Apply the service's alert policies (deploy/cloudrun/alerts) after its rollout."""
    from conforto._deploy.alerts import apply_policies, render_policies
    from conforto._deploy.cloudrun import Gcloud
    from conforto.errors import ConfortoError

    channel = get_settings().deploy.alert_channel
    rendered = render_policies(policies, service=service, environment=env, channel=channel)
    out.mkdir(parents=True, exist_ok=True)
    try:
        applied = apply_policies(Gcloud(), rendered, project=project, folder=out)
    except ConfortoError as exc:
        raise fail(f"{service} deployed, but its alert policies were not applied: {exc}") from None
    for line in applied:
        console.print(line, highlight=False)
    if rendered and channel is None:
        console.print(
            "no alert channel: the policies notify nobody (set CONFORTO_DEPLOY__ALERT_CHANNEL)"
        )


def _registered(version: str) -> str:
    """The version's number when this machine's registry knows it, else ``VERSION``."""
    from conforto.errors import ConfortoError

    if not get_settings().registry_dir.is_dir():  # a dry run creates no registry
        return "VERSION"
    try:
        return open_registry().resolve(version)[0].version
    except ConfortoError:
        return "VERSION"


def _smoke(url: str, artifact: Path, version: str, challenger: str | None) -> Any:
    from conforto._deploy.smoke import smoke as check
    from conforto._model.artifact import load_model

    model = load_model(artifact, verify=False)
    return check(url, model, version=version, challenger=challenger, timeout=30)


def release(
    tag: Annotated[
        str | None, typer.Option(help="The release's name; default: the commit's git tag.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for CHANGELOG.md and MODEL_CARD.md.")] = Path(
        "dist"
    ),
    version: Annotated[
        str, typer.Option("--version", help="The registered version shipped, or 'production'.")
    ] = "production",
) -> None:
    """Write the release notes of the model shipped: dist/CHANGELOG.md, dist/MODEL_CARD.md."""
    from conforto._lifecycle.release import git_tag, write_release

    with errors():
        name = tag or git_tag()
        paths = write_release(open_registry(), name, out, version)
    for path in paths.values():
        console.print(f"{name}: {path}", highlight=False)
