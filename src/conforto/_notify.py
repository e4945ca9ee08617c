"""Slack notifications through an incoming webhook, in Block Kit.

The foundation of every notification: :class:`Message`, the Block Kit pieces messages are made
of, and :class:`Notifier`, which sends them with slack-sdk's ``WebhookClient`` and its retry
handlers (connection errors, 429 with ``Retry-After``, 5xx). Each event's message is built beside
the event: a pipeline's result and a production move in :mod:`conforto._lifecycle`, drift,
degraded performance and a due retraining in :mod:`conforto._monitor`, a deploy in
:mod:`conforto._deploy`, a challenger the service stopped in :mod:`conforto._serving`.

The webhook URL (``CONFORTO_NOTIFY__SLACK_WEBHOOK_URL``) is a secret: it is never printed or
logged, and is masked in every message that could hold it. Unset, nothing is sent and nothing
fails. A Slack outage never fails the caller either: a warning, and the message waits in an
outbox (``$CONFORTO_HOME/notify/outbox.jsonl``) for ``conforto notify retry``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from conforto._fileio import atomic_write_text

if TYPE_CHECKING:
    from conforto._settings import Settings

log = logging.getLogger(__name__)
MASK = "***"


@dataclass
class Message:
    """A Slack message: ``text`` (the notification's fallback) and Block Kit ``blocks``
    (slack-sdk's block models).
    """

    kind: str
    text: str
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, object]:
        """The JSON body an incoming webhook takes."""
        return {"text": self.text, "blocks": [block.to_dict() for block in self.blocks]}

    def to_json(self) -> str:
        """One line of the outbox."""
        return json.dumps({"kind": self.kind, **self.payload()})

    @classmethod
    def from_json(cls, line: str) -> Message:
        """Inverse of :meth:`to_json`."""
        kept = json.loads(line)
        return cls(kept["kind"], kept["text"], Block.parse_all(kept["blocks"]))


def header(text: str) -> Block:
    """A header block (plain text, cut at Slack's 150 characters)."""
    return HeaderBlock(text=PlainTextObject(text=text[:150], emoji=True))


def section(markdown: str) -> Block:
    """A section block of Slack markdown (cut at Slack's 3,000 characters)."""
    return SectionBlock(text=MarkdownTextObject(text=markdown[:3000]))


def fields(pairs: dict[str, str]) -> Block:
    """A section of labelled fields, two columns (Slack shows at most ten)."""
    items = [MarkdownTextObject(text=f"*{k}*\n{v}") for k, v in list(pairs.items())[:10]]
    return SectionBlock(fields=items)


def context(text: str) -> Block:
    """A context block: the small print under a message."""
    return ContextBlock(elements=[MarkdownTextObject(text=text[:3000])])


def hello_message() -> Message:
    """What ``conforto notify test`` sends."""
    news = "training runs, promotions and rollbacks, drift, degraded performance and deploys"
    blocks = [
        header("conforto notifications work"),
        section(f"This channel will hear about {news}."),
    ]
    return Message("test", "conforto notifications work", blocks)


class Notifier:
    """Sends messages to the Slack webhook of the settings, or keeps them for a retry.

    Parameters
    ----------
    settings
        ``notify.slack_webhook_url`` (unset: sending does nothing), timeout, retries, and
        ``CONFORTO_HOME`` for the outbox.
    """

    def __init__(self, settings: Settings) -> None:
        secret = settings.notify.slack_webhook_url
        self.url = secret.get_secret_value() if secret is not None else None
        self.timeout = settings.notify.timeout
        self.retries = settings.notify.retries
        self.outbox = settings.home / "notify" / "outbox.jsonl"

    @property
    def enabled(self) -> bool:
        """Whether a webhook is configured."""
        return self.url is not None

    def _mask(self, text: str) -> str:
        return text.replace(self.url, MASK) if self.url else text

    def _post(self, message: Message) -> str | None:
        """Send once (with the client's retries); the reason it failed, or ``None``."""
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )
        from slack_sdk.webhook import WebhookClient

        assert self.url is not None  # noqa: S101 - checked by the callers
        quiet = logging.getLogger("conforto._notify.slack")  # the SDK logs errors; we warn once
        quiet.setLevel(logging.CRITICAL)
        client = WebhookClient(
            self.url,
            timeout=int(max(self.timeout, 1)),
            logger=quiet,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=self.retries),
                RateLimitErrorRetryHandler(max_retry_count=self.retries),
                ServerErrorRetryHandler(max_retry_count=self.retries),
            ],
        )
        try:
            response = client.send(text=message.text, blocks=message.blocks)
        except Exception as exc:  # urllib and the SDK raise many types; all mean "not sent"
            return self._mask(f"{type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return self._mask(f"Slack answered HTTP {response.status_code}: {response.body[:200]}")
        return None

    def send(self, message: Message) -> bool:
        """Send ``message``; never raises for a delivery failure.

        Returns
        -------
        bool
            True when Slack took it; False when no webhook is set, or Slack could not be reached
            (then a warning is logged and the message waits in the outbox).
        """
        if not self.enabled:
            return False
        failure = self._post(message)
        if failure is None:
            return True
        log.warning(
            "Slack notification not sent (%s); it waits in %s for `conforto notify retry`",
            failure,
            self.outbox,
        )
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self.outbox.open("a") as handle:
            handle.write(message.to_json() + "\n")
        return False

    def retry(self) -> tuple[int, int]:
        """Send the messages kept in the outbox, oldest first.

        Returns
        -------
        tuple
            ``(sent, left)``: left ones stay in the outbox, which is removed once empty.
        """
        if not self.enabled or not self.outbox.is_file():
            return 0, 0
        kept = [Message.from_json(line) for line in self.outbox.read_text().splitlines() if line]
        left = [m for m in kept if self._post(m) is not None]
        if left:
            atomic_write_text(self.outbox, "".join(m.to_json() + "\n" for m in left))
        else:
            self.outbox.unlink()
        return len(kept) - len(left), len(left)


def notify(settings: Settings, message: Message) -> bool:
    """Send ``message`` with the settings' webhook (see :meth:`Notifier.send`)."""
    return Notifier(settings).send(message)
