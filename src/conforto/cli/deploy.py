"""``conforto smoke``: check a running service against the model it should serve."""

from __future__ import annotations

from typing import Annotated

import typer

from conforto.cli.common import console, errors, fail


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
    from conforto.artifact import load_model
    from conforto.cli.monitor import served_model
    from conforto.deploy.smoke import smoke as check

    with errors():
        directory, _ = served_model(model)
        result = check(url, load_model(directory), timeout=timeout)
    if not result.passed:
        raise fail(f"smoke test failed: {result.reason}")
    console.print(f"smoke test passed: {result.reason}", highlight=False)
