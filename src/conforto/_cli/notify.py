"""``conforto notify``: Slack notifications: a test message, and the ones that waited."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from conforto._cli.common import console, errors, fail
from conforto._notify import Message, Notifier, hello_message, section
from conforto._settings import get_settings

app = typer.Typer(help="Slack notifications of lifecycle events.", no_args_is_help=True)


def tell(message: Message) -> None:
    """Send ``message`` if a webhook is set (a failure is a warning, the message kept)."""
    with errors():
        Notifier(get_settings()).send(message)


@app.command("test")
def send_test(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the Block Kit payload instead of sending.")
    ] = False,
) -> None:
    """Send a test message to CONFORTO_NOTIFY__SLACK_WEBHOOK_URL (or print it with --dry-run)."""
    message = hello_message()
    if dry_run:
        typer.echo(json.dumps(message.payload(), indent=2, ensure_ascii=False))
        return
    with errors():
        notifier = Notifier(get_settings())
        if not notifier.enabled:
            raise fail(
                "no webhook: set CONFORTO_NOTIFY__SLACK_WEBHOOK_URL (a Slack incoming webhook)."
            )
        if not notifier.send(message):
            raise fail(f"Slack did not take the message; it waits in {notifier.outbox}.")
    console.print("sent: conforto notifications work")


@app.command("retry")
def retry() -> None:
    """Send the messages that waited in CONFORTO_HOME/notify/outbox.jsonl (Slack was down)."""
    with errors():
        notifier = Notifier(get_settings())
        if not notifier.enabled:
            raise fail("no webhook: set CONFORTO_NOTIFY__SLACK_WEBHOOK_URL first.")
        sent, left = notifier.retry()
    console.print(f"sent {sent}, {left} still waiting" if sent or left else "nothing to send")
    if left:
        raise typer.Exit(1)


@app.command("message")
def message(text: Annotated[str, typer.Argument(help="What to say (Slack mrkdwn).")]) -> None:
    """Send a message of your own (e.g. a workflow's outcome); nothing without a webhook."""
    tell(Message("message", text, [section(text)]))
