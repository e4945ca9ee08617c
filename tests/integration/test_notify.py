"""Slack notifications against a real local HTTP receiver answering as Slack does, or not."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from conforto._deploy.local import deploy_message
from conforto._notify import Notifier, hello_message
from conforto._settings import NotifySettings, Settings
from tests.cli import conforto_cli
from tests.processes import in_thread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration


class Slack(http.server.BaseHTTPRequestHandler):
    """Answers each post with the next of ``replies``: (status, headers); 200 once they run out."""

    replies: ClassVar[list[tuple[int, dict[str, str]]]] = []
    posts: ClassVar[list[dict[str, Any]]] = []
    times: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append(json.loads(body))
        self.times.append(time.monotonic())
        status, headers = self.replies.pop(0) if self.replies else (200, {})
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"rate_limited" if status == 429 else b"no")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[str]:
    Slack.replies, Slack.posts, Slack.times = [], [], []
    with in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slack)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXXSECRET"


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that takes the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/services/T000/B000/XXXXSECRET"
    listener.close()


def notifier(url: str | None, home: Path, timeout: float = 5.0) -> Notifier:
    notify = NotifySettings(slack_webhook_url=url, timeout=timeout, retries=1)
    return Notifier(Settings(home=home, notify=notify))


def test_without_a_webhook_nothing_is_sent_and_nothing_fails(home: Path) -> None:
    quiet = notifier(None, home)
    assert not quiet.enabled
    assert quiet.send(hello_message()) is False
    assert not quiet.outbox.exists()


def test_a_message_reaches_slack_in_block_kit(slack: str, home: Path) -> None:
    message = deploy_message("production", "3", ok=True, detail="smoke passed", url="http://x")
    assert notifier(slack, home).send(message) is True
    (post,) = Slack.posts
    assert post["text"] == message.text
    assert post["blocks"][0]["type"] == "header"
    assert "version 3 deployed" in post["blocks"][0]["text"]["text"]


def test_429_is_retried_after_the_time_slack_asks(slack: str, home: Path) -> None:
    Slack.replies = [(429, {"Retry-After": "1"})]
    assert notifier(slack, home).send(hello_message()) is True
    assert len(Slack.posts) == 2
    assert Slack.times[1] - Slack.times[0] >= 1.0


def test_an_outage_keeps_the_message_for_a_retry_and_never_shows_the_url(
    slack: str, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Slack.replies = [(500, {})] * 2  # the first try and its one retry
    sender = notifier(slack, home)
    with caplog.at_level(logging.WARNING):
        assert sender.send(hello_message()) is False
    assert "HTTP 500" in caplog.text
    assert "XXXXSECRET" not in caplog.text
    assert len(sender.outbox.read_text().splitlines()) == 1
    assert sender.retry() == (1, 0)  # Slack answers again
    assert not sender.outbox.exists()
    assert Slack.posts[-1]["text"] == "conforto notifications work"


def test_a_slack_that_never_answers_times_out_into_the_outbox(
    silent: str, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sender = notifier(silent, home, timeout=1.0)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert sender.send(hello_message()) is False
    assert time.monotonic() - start < 15
    assert "XXXXSECRET" not in caplog.text
    assert sender.outbox.is_file()
    assert sender.retry() == (0, 1)  # still down: kept


def test_the_cli_prints_the_payload_without_a_webhook_and_masks_a_bad_one(slack: str) -> None:
    dry = conforto_cli("notify", "test", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["blocks"][0]["type"] == "header"
    none = conforto_cli("notify", "test")
    assert none.returncode == 1
    assert "set CONFORTO_NOTIFY__SLACK_WEBHOOK_URL" in none.stderr
    bad_url = {"CONFORTO_NOTIFY__SLACK_WEBHOOK_URL": "hooks.slack.com/SECRET9"}
    bad = conforto_cli("notify", "test", env=bad_url)
    assert bad.returncode == 1
    assert "CONFORTO_NOTIFY__SLACK_WEBHOOK_URL" in bad.stderr
    assert "SECRET9" not in bad.stdout + bad.stderr
    sent = conforto_cli("notify", "test", env={"CONFORTO_NOTIFY__SLACK_WEBHOOK_URL": slack})
    assert sent.returncode == 0, sent.stderr
    assert Slack.posts[-1]["text"] == "conforto notifications work"
    assert "XXXXSECRET" not in sent.stdout + sent.stderr
