"""Monitoring results as Prometheus gauges, pushed to a Pushgateway (how batch jobs report).

Every gauge is named ``conforto_…`` and labelled with the model version; each monitor pushes
its own group (``job="conforto_monitor"``, ``monitor="drift"`` or ``"performance"``), so one
push never wipes the other's gauges. Prometheus scrapes the gateway; the alerting rules in
``deploy/prometheus/rules.yml`` read these gauges.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from conforto.errors import DeliveryError

if TYPE_CHECKING:
    from conforto._monitor.drift import DriftReport
    from conforto._monitor.performance import PerformanceReport

JOB = "conforto_monitor"


def _gauge(registry: CollectorRegistry, name: str, text: str, labels: list[str]) -> Gauge:
    return Gauge(name, text, ["model_version", *labels], registry=registry)


def _stamp(registry: CollectorRegistry, version: str) -> None:
    _gauge(
        registry,
        "conforto_monitor_last_run_timestamp_seconds",
        "When this monitor last ran [s since the epoch].",
        [],
    ).labels(version).set(time.time())


def _rows(registry: CollectorRegistry, version: str, rows: int) -> None:
    _gauge(
        registry, "conforto_monitor_window_rows", "Predictions in the window judged.", []
    ).labels(version).set(rows)


def quiet_gauges(version: str) -> CollectorRegistry:
    """A window with no prediction: ``conforto_monitor_window_rows`` 0 and the run's timestamp
    (the monitor ran; there was nothing to judge).
    """
    registry = CollectorRegistry()
    _rows(registry, version, 0)
    _stamp(registry, version)
    return registry


def drift_gauges(report: DriftReport) -> CollectorRegistry:
    """``conforto_drift_statistic{feature}``, ``conforto_drift_detected{feature}``,
    ``conforto_dataset_drift``, ``conforto_monitor_window_rows`` and the run's timestamp.
    """
    registry = CollectorRegistry()
    version = report.model_version
    _rows(registry, version, int(report.current.get("rows") or 0))
    statistic = _gauge(
        registry, "conforto_drift_statistic", "Drift distance of an input.", ["feature"]
    )
    detected = _gauge(
        registry, "conforto_drift_detected", "1 when an input has drifted.", ["feature"]
    )
    for feature in report.features:
        if feature.statistic is not None:
            statistic.labels(version, feature.name).set(feature.statistic)
        detected.labels(version, feature.name).set(float(feature.drifted))
    _gauge(registry, "conforto_dataset_drift", "1 when the inputs as a whole drifted.", []).labels(
        version
    ).set(float(report.dataset_drift))
    _stamp(registry, version)
    return registry


def performance_gauges(result: PerformanceReport) -> CollectorRegistry:
    """``conforto_estimated_accuracy``, ``conforto_realised_accuracy`` (when votes came),
    ``conforto_validation_accuracy``, ``conforto_performance_degraded``,
    ``conforto_feedback_rows``, ``conforto_monitor_window_rows`` and the run's timestamp.
    """
    registry = CollectorRegistry()
    version = result.model_version
    _rows(registry, version, result.rows)
    values = {
        "conforto_estimated_accuracy": (
            "Accuracy expected from the probabilities.",
            result.estimated["accuracy"],
        ),
        "conforto_validation_accuracy": (
            "Accuracy in validation (grouped cross-validation).",
            result.validation.get("accuracy"),
        ),
        "conforto_performance_degraded": (
            "1 when the model counts as degraded.",
            float(result.degraded),
        ),
        "conforto_feedback_rows": (
            "Predictions of the window with a vote.",
            result.labelled_rows,
        ),
    }
    if result.realised is not None:
        values["conforto_realised_accuracy"] = (
            "Accuracy on the predictions with a vote.",
            result.realised.accuracy,
        )
    for name, (text, value) in values.items():
        if value is not None:
            _gauge(registry, name, text, []).labels(version).set(float(value))
    _stamp(registry, version)
    return registry


def push_gauges(url: str, monitor: str, registry: CollectorRegistry, timeout: float = 10.0) -> None:
    """Push a monitor's gauges to the Pushgateway at ``url`` (replacing its previous push).

    Raises
    ------
    DeliveryError
        When the gateway cannot be reached or refuses, naming the URL.
    """
    try:
        push_to_gateway(
            url, job=JOB, registry=registry, grouping_key={"monitor": monitor}, timeout=timeout
        )
    except (URLError, OSError, ValueError) as exc:
        raise DeliveryError(
            f"cannot push to the Pushgateway at {url} ({exc}): check --push (e.g. "
            "http://127.0.0.1:9091) and that prometheus-pushgateway runs."
        ) from None
