"""Whether a running service is healthy, ready and answering as its model should.

``conforto smoke`` runs these checks.

Three checks, each with a one-line reason when it fails: ``/health`` answers, ``/ready`` says a
model is loaded, and the golden predictions (a handful of rooms with the probabilities the
model gave them at training, ``golden.json`` in its artifact) come back the same over HTTP.
An artifact from before golden predictions existed gets them computed here, from the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from conforto._model.artifact import GOLDEN, Golden, GoldenCase, ThermalModel

#: Largest difference of a probability over HTTP from the golden one (JSON's floats round-trip
#: exactly; the service and batch scoring agree within 1e-9).
TOLERANCE = 1e-6


@dataclass(frozen=True)
class SmokeResult:
    """Whether the service passed, and why not."""

    passed: bool
    reason: str
    model_version: str | None = None


def golden_cases(model: ThermalModel) -> list[GoldenCase]:
    """The model's golden inputs and probabilities (its ``golden.json``)."""
    golden: Golden = json.loads(model.file(GOLDEN).read_text())
    return golden["cases"]


def smoke(
    url: str,
    model: ThermalModel,
    *,
    version: str | None = None,
    challenger: str | None = None,
    timeout: float = 10.0,
) -> SmokeResult:
    """Check the service at ``url`` against ``model`` (its predictions logged as a smoke test's,
    which the monitors and retraining leave out).

    Parameters
    ----------
    url
        The service's base URL, e.g. ``http://127.0.0.1:8080``.
    model
        The model it should serve.
    version
        The registry version it should say it serves (``/ready``'s ``model_version``; its
        content id, ``model.version``, passes too: a copy without its registration record);
        ``None``: not checked.
    challenger
        The registry version of the challenger it should run beside the model (``/ready``'s
        ``challenger``); ``None``: not checked.
    timeout
        Seconds to wait for each answer [s].

    Returns
    -------
    SmokeResult
        ``passed`` with a summary, or the first check that failed and how.
    """
    try:
        kind = {"X-Request-Kind": "smoke"}
        with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=kind) as client:
            return _checks(client, model, version, challenger)
    except httpx.HTTPError as exc:
        return SmokeResult(False, f"{url} cannot be reached: {type(exc).__name__}: {exc}")


def _checks(
    client: httpx.Client, model: ThermalModel, expected: str | None, challenger: str | None
) -> SmokeResult:
    health = client.get("/health")
    if health.status_code != 200 or health.json() != {"status": "healthy"}:
        return SmokeResult(False, f"/health answered {health.status_code}: {health.text[:200]}")
    ready = client.get("/ready")
    if ready.status_code != 200:
        return SmokeResult(False, f"/ready answered {ready.status_code}: {ready.text[:200]}")
    version = ready.json().get("model_version")
    if expected is not None and version not in (expected, model.version):
        return SmokeResult(
            False, f"/ready says model {version}: the service runs another version than {expected}"
        )
    beside = ready.json().get("challenger")
    if challenger is not None and beside != challenger:
        return SmokeResult(
            False,
            f"/ready names challenger {beside}, not {challenger}: the challenger baked into the "
            "image did not start (the service's log says why)",
        )
    cases = golden_cases(model)
    for i, case in enumerate(cases):
        answer = client.post("/predict", json=case["inputs"])
        if answer.status_code != 200:
            return SmokeResult(
                False, f"golden room {i}: /predict answered {answer.status_code}", version
            )
        got = answer.json()["probabilities"]
        gap = max(abs(got[name] - p) for name, p in case["probabilities"].items())
        if gap > TOLERANCE or answer.json()["predicted_class"] != case["predicted_class"]:
            return SmokeResult(
                False,
                f"golden room {i}: answered {got} ({answer.json()['predicted_class']}), expected "
                f"{case['probabilities']} ({case['predicted_class']}): the service runs another "
                "model than this one",
                version,
            )
    return SmokeResult(
        True, f"healthy, ready (model {version}), {len(cases)} golden predictions equal", version
    )
