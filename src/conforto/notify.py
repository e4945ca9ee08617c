"""Slack notifications of lifecycle events, in Block Kit, through an incoming webhook.

Pipeline results, promotions and rollbacks, drift, degraded performance and deploys each have a
message builder; :class:`Notifier` sends them with slack-sdk's ``WebhookClient`` and its retry
handlers (connection errors, 429 with ``Retry-After``, 5xx). The webhook URL
(``CONFORTO_NOTIFY__SLACK_WEBHOOK_URL``) is a secret: it is never printed or logged, and is
masked in every message that could hold it. Unset, nothing is sent and nothing fails. A Slack
outage never fails the caller either: a warning, and the message waits in an outbox
(``$CONFORTO_HOME/notify/outbox.jsonl``) for ``conforto notify retry``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from conforto.fileio import atomic_write_text

if TYPE_CHECKING:
    from conforto.lifecycle.audit import Move
    from conforto.lifecycle.gate import GateReport
    from conforto.monitor.drift import DriftReport
    from conforto.settings import Settings

log = logging.getLogger(__name__)
MASK = "***"


@dataclass
class Message:
    """A Slack message: ``text`` (the notification's fallback) and Block Kit ``blocks``."""

    kind: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The JSON body an incoming webhook takes."""
        return {"text": self.text, "blocks": self.blocks}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": markdown[:3000]}}


def _fields(pairs: dict[str, str]) -> dict[str, Any]:
    items = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in list(pairs.items())[:10]]
    return {"type": "section", "fields": items}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


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
    blocks = [_header(f"Training pipeline: {verdict}")]
    if gate is not None:
        rows = []
        for name, m in gate.compared().items():
            cells = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in m.items())
            label = f"champion (v{gate.champion})" if name == "champion" else name
            rows.append(f"• *{label.replace('_', ' ')}*: {cells}")
        blocks.append(_section("\n".join(rows)))
        failed = [f"• {c.name}: {c.detail}" for c in gate.failed]
        if failed:
            blocks.append(_section("*Failed checks*\n" + "\n".join(failed)))
    blocks.append(_context(f"production version: {production or 'none'}"))
    return Message("pipeline", f"{icon} conforto training pipeline: {verdict}", blocks)


def move_message(move: Move) -> Message:
    """A promotion or a rollback: who, why, from which version to which."""
    action = "rolled back" if move.action == "rollback" else "promoted"
    record = move.to_json()
    blocks = [
        _header(f"Production {action}: version {record['from'] or '-'} → {record['to']}"),
        _fields(
            {
                "from": str(record["from"] or "-"),
                "to": str(record["to"]),
                "who": record["user"],
                "why": move.reason or "-",
            }
        ),
        _context(f"{record['time']} · `{move.command}`"),
    ]
    text = f"conforto production {action}: {record['from'] or '-'} → {record['to']} ({move.reason})"
    return Message(move.action, text, blocks)


def drift_message(report: DriftReport) -> Message:
    """The inputs have drifted: which, by how much, against what."""
    data = report.to_dict()
    worst = [f for f in report.features if f.drifted]
    worst.sort(key=lambda f: -(f.statistic or 0.0))
    lines = [f"• *{f.name}*: PSI {f.statistic:.3f} (threshold {f.threshold:.2f})" for f in worst]
    verdict = "the inputs have drifted" if report.dataset_drift else "some inputs drifted"
    blocks = [
        _header(f"Input drift, model {report.model_version}: {verdict}"),
        _section("\n".join(lines) or "no input drifted"),
        _context(
            f"{data['current']['rows']:,} rows of {data['current']['source']} vs "
            f"{data['reference']['rows']:,} of {data['reference']['source']}; share "
            f"{report.share:.2f} (threshold {report.drift_share:.2f})"
        ),
    ]
    text = f":warning: conforto input drift, model {report.model_version}: " + ", ".join(
        data["drifted_features"]
    )
    return Message("drift", text, blocks)


def performance_message(result: dict[str, Any]) -> Message:
    """The model's performance degraded: estimated, realised and validation figures."""
    est, real, val = result["estimated"], result["realised"], result["validation"]
    pairs = {
        "estimated accuracy": f"{est['accuracy']:.3f}",
        "realised accuracy": f"{real['accuracy']:.3f}" if real else "no votes yet",
        "validation accuracy": f"{val.get('accuracy', float('nan')):.3f}",
        "votes": f"{result['labelled_rows']:,} of {result['rows']:,} predictions",
    }
    blocks = [
        _header(f"Model {result['model_version']} degraded"),
        _fields(pairs),
        _section("\n".join(f"• {r}" for r in result.get("reasons", []))),
    ]
    return Message("performance", f":rotating_light: conforto model degraded: {pairs}", blocks)


def check_message(decision: dict[str, Any]) -> Message:
    """``conforto monitor check`` decided the model should be retrained, and why."""
    blocks = [
        _header(f"Model {decision['model_version']}: retraining is due"),
        _section("\n".join(f"• {r}" for r in decision["reasons"])),
        _context(f"{decision['new_votes']:,} new votes · checked {decision['checked']}"),
    ]
    text = f":arrows_counterclockwise: conforto: retrain model {decision['model_version']}"
    return Message("check", text, blocks)


def deploy_message(
    environment: str, version: str, *, ok: bool, detail: str = "", url: str = ""
) -> Message:
    """A deploy finished, or rolled itself back."""
    verdict = "deployed" if ok else "deploy failed, rolled back"
    blocks = [
        _header(f"{environment}: version {version} {verdict}"),
        _section(detail or "-"),
        _context(url or environment),
    ]
    icon = ":rocket:" if ok else ":x:"
    return Message("deploy", f"{icon} conforto {environment}: version {version} {verdict}", blocks)


def challenger_message(version: str, mode: str, reason: str, figures: dict[str, Any]) -> Message:
    """The service took a challenger out of the path (its automatic stop)."""
    pairs = {k: f"{v:.3g}" for k, v in figures.items() if isinstance(v, int | float)}
    blocks = [
        _header(f"Challenger {version} ({mode}) stopped"),
        _section(reason),
        _fields(pairs),
        _context("production answers every request; POST /admin/challenger starts another"),
    ]
    return Message("challenger", f":octagonal_sign: conforto challenger {version} stopped", blocks)


def hello_message() -> Message:
    """What ``conforto notify test`` sends."""
    news = "training runs, promotions and rollbacks, drift, degraded performance and deploys"
    blocks = [
        _header("conforto notifications work"),
        _section(f"This channel will hear about {news}."),
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
        quiet = logging.getLogger("conforto.notify.slack")  # the SDK logs errors; we warn once
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
            handle.write(json.dumps(asdict(message)) + "\n")
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
        kept = [
            Message(**json.loads(line)) for line in self.outbox.read_text().splitlines() if line
        ]
        left = [m for m in kept if self._post(m) is not None]
        if left:
            atomic_write_text(self.outbox, "".join(json.dumps(asdict(m)) + "\n" for m in left))
        else:
            self.outbox.unlink()
        return len(kept) - len(left), len(left)


def notify(settings: Settings, message: Message) -> bool:
    """Send ``message`` with the settings' webhook (see :meth:`Notifier.send`)."""
    return Notifier(settings).send(message)
