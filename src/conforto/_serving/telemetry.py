"""Prometheus metrics of the service (prometheus-client), correct with several workers.

With several uvicorn workers ``conforto serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` and every
worker writes its samples there; ``/metrics`` aggregates them all, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from conforto._predictions.log import LogCounters

REQUESTS = Counter(
    "conforto_http_requests", "HTTP requests answered.", ["route", "method", "status"]
)
LATENCY = Histogram(
    "conforto_http_request_duration_seconds",
    "Time to answer a request [s].",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PREDICTIONS = Counter(
    "conforto_predictions",
    "Predictions made, by class and by who asked: occupant, explorer, smoke (a deploy's test) "
    "or shadow (a copy of traffic another deployment answers).",
    ["predicted_class", "kind"],
)
SET_SIZES = Counter(
    "conforto_prediction_sets",
    "Predictions by the size of their prediction set (1: the model is sure at the level asked; "
    "3: any vote is possible).",
    ["size"],
)
MODEL = Gauge(
    "conforto_model_info",
    "The model served (1 for the current version).",
    ["version"],
    multiprocess_mode="livemax",
)
READY = Gauge(
    "conforto_model_ready",
    "1 when a model is loaded and answering, 0 otherwise.",
    multiprocess_mode="livemin",
)
NO_PRODUCTION = Gauge(
    "conforto_production_model_missing",
    "1 when the service follows production and the registry names no production model.",
    multiprocess_mode="livemax",
)
VALIDATION_ACCURACY = Gauge(
    "conforto_model_validation_accuracy",
    "Accuracy of the served model in its validation (building-grouped cross-validation).",
    multiprocess_mode="livemax",
)
LOG_WRITES = Counter("conforto_prediction_log_writes", "Rows stored in the log.", ["table"])
LOG_FAILURES = Counter("conforto_prediction_log_failures", "Failed writes to the prediction log.")
LOG_DROPPED = Counter(
    "conforto_prediction_log_dropped", "Rows lost: the spool's disk was full or over its bound."
)
LOG_BACKLOG = Gauge(
    "conforto_prediction_log_spool_bytes",
    "Bytes in the spool waiting to be stored [bytes].",
    multiprocess_mode="livesum",
)
FEEDBACK = Counter("conforto_feedback", "Votes accepted, by status.", ["status"])
FEEDBACK_ORPHANED = Counter(
    "conforto_feedback_orphaned", "Pending votes whose prediction never landed in the horizon."
)
MODEL_PREDICTIONS = Counter(
    "conforto_model_predictions",
    "Predictions by the model that made them: production, canary (a challenger answering) or "
    "shadow (a challenger scoring behind production).",
    ["arm", "version"],
)
MODEL_LATENCY = Histogram(
    "conforto_model_prediction_seconds",
    "Time from a request's arrival to its prediction (shadow: the challenger's batch) [s].",
    ["arm"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SHADOW_COMPARED = Counter(
    "conforto_shadow_compared", "Predictions a shadow challenger also scored.", ["version"]
)
SHADOW_AGREED = Counter(
    "conforto_shadow_agreed", "Shadow predictions of the same class as production's.", ["version"]
)
SHADOW_SKIPPED = Counter(
    "conforto_shadow_skipped", "Predictions a shadow challenger skipped: it was behind."
)
CHALLENGER = Gauge(
    "conforto_challenger_state",
    "The challenger: 1 for its version, mode and state (running, stopped), 0 once replaced.",
    ["version", "mode", "state"],
    multiprocess_mode="livemax",
)
CHALLENGER_WINDOW = Gauge(
    "conforto_challenger_window",
    "The challenger's automatic-stop window: error_rate, p99_ms, disagreement, predictions.",
    ["figure"],
    multiprocess_mode="livemax",
)
CHALLENGER_FAILURES = Counter(
    "conforto_challenger_failures", "Challenger scorings that failed, by mode.", ["mode"]
)
CHALLENGER_STOPS = Counter(
    "conforto_challenger_stops", "Challengers stopped automatically, by reason.", ["reason"]
)
ADAPTED = Counter(
    "conforto_adapted_predictions",
    "Production's answers site adaptation adjusted, by whether it changed their class from the "
    "model's zero-shot answer (changed: true or false).",
    ["changed"],
)
ADAPTATION_SITES = Gauge(
    "conforto_adaptation_sites",
    "Sites whose occupants' votes adjust the served model's answers.",
    multiprocess_mode="livemax",
)
ADAPTATION_VERSION = Gauge(
    "conforto_adaptation_version",
    "The newest vote site adaptation has learned (its id; it grows as votes are learned).",
    multiprocess_mode="livemax",
)
ERRORS = Counter("conforto_errors", "Error responses and failures, by type.", ["type"])
RELOADS = Counter("conforto_model_reloads", "Model reloads, by outcome.", ["outcome"])

#: Error type of each error status, for ``conforto_errors_total``.
ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    422: "validation",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}

LOG_COUNTERS = LogCounters(
    written=lambda table, rows: LOG_WRITES.labels(table).inc(rows),
    failed=LOG_FAILURES.inc,
    dropped=LOG_DROPPED.inc,
    orphaned=FEEDBACK_ORPHANED.inc,
    backlog=LOG_BACKLOG.set,
)


def set_model(
    version: str, previous: str | None = None, validation_accuracy: float | None = None
) -> None:
    """Mark ``version`` as the model served (and ``previous`` as no longer served)."""
    if previous is not None and previous != version:
        MODEL.labels(previous).set(0)
    MODEL.labels(version).set(1)
    READY.set(1)
    NO_PRODUCTION.set(0)
    VALIDATION_ACCURACY.set(float("nan") if validation_accuracy is None else validation_accuracy)


def set_unready(no_production: bool) -> None:
    """No model answers (and whether that is because production names none)."""
    READY.set(0)
    NO_PRODUCTION.set(float(no_production))


def exposition() -> tuple[bytes, str]:
    """The metrics text and its content type (all workers' samples in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
