"""The fast path: validated requests → a numeric matrix → the booster. No DataFrame per request."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from conforto.artifact import ThermalModel
from conforto.categories import normalise_value
from conforto.features import comfort_arrays
from conforto.target import CLASSES

_PHYSICS_INPUTS = ("ta", "tr", "rh", "vel", "met", "clo", "t_mot_isd")
_NAMES = [c.value for c in CLASSES]


class Predictor:
    """Score observations (dicts of canonical inputs) with a loaded model.

    Parameters
    ----------
    model
        The loaded artifact.
    version
        Version reported in responses (the registry version when served from the registry).
    """

    def __init__(self, model: ThermalModel, version: str) -> None:
        self.model = model
        self.version = version
        self.features = model.spec.features
        self.codes = {
            f.name: {level: float(i) for i, level in enumerate(f.levels)}
            for f in self.features
            if f.kind == "categorical"
        }
        self.derived = model.spec.derived

    def matrix(
        self, observations: Sequence[dict[str, Any]]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[list[str]]]:
        """The model matrix, the ISO 7730 PMV/PPD and the notes for each observation."""
        n = len(observations)
        notes: list[list[str]] = [[] for _ in range(n)]
        inputs = {
            c: np.array(
                [o.get(c) if o.get(c) is not None else np.nan for o in observations],
                dtype=np.float64,
            )
            for c in _PHYSICS_INPUTS
        }
        physics = comfort_arrays(inputs, sorted(set(self.derived) | {"pmv_iso", "ppd_iso"}))
        for i, o in enumerate(observations):
            if o.get("tr") is None:
                notes[i].append("tr (mean radiant temperature) taken equal to ta")
            if np.isnan(physics["pmv_iso"][i]):
                notes[i].append("pmv/ppd not given: inputs outside ISO 7730's applicability")
            if o.get("t_mot_isd") is None and ("t_cmf" in self.derived or "dt_cmf" in self.derived):
                notes[i].append("no t_mot_isd: the adaptive comfort features are unknown")
        out = np.full((n, len(self.features)), np.nan)
        for j, feature in enumerate(self.features):
            if feature.kind == "derived":
                out[:, j] = physics[feature.name]
            elif feature.kind == "numeric":
                out[:, j] = [
                    np.nan if o.get(feature.name) is None else o[feature.name] for o in observations
                ]
            else:
                codes = self.codes[feature.name]
                for i, o in enumerate(observations):
                    value = normalise_value(feature.name, o.get(feature.name))
                    if value is None:
                        continue
                    if value in codes:
                        out[i, j] = codes[value]
                    else:
                        notes[i].append(
                            f"{feature.name} {value!r} not seen in training: treated as unknown"
                        )
        return out, physics, notes

    def predict(self, observations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predictions in the API's response shape, one per observation, in order."""
        matrix, physics, notes = self.matrix(observations)
        proba = self.model.predict_matrix(matrix)
        decision = self.model.decide(proba)
        results = []
        for i in range(len(observations)):
            pmv, ppd = physics["pmv_iso"][i], physics["ppd_iso"][i]
            results.append(
                {
                    "prediction_id": uuid.uuid4().hex,
                    "predicted_class": _NAMES[int(decision[i])],
                    "probabilities": dict(zip(_NAMES, proba[i].tolist(), strict=True)),
                    "model_version": self.version,
                    "pmv": None if np.isnan(pmv) else round(float(pmv), 3),
                    "ppd": None if np.isnan(ppd) else round(float(ppd), 2),
                    "notes": notes[i],
                }
            )
        return results


class MicroBatcher:
    """Gather concurrent requests and predict them together, off the event loop.

    The event loop only queues an observation and awaits its future; one worker thread scores
    whatever has queued up in one vectorised call. Under load, batches grow by themselves and
    the per-call costs (thread hand-off, PMV, booster) are shared; a lone request goes
    straight through.

    Parameters
    ----------
    predictor
        The predictor to call.
    max_batch
        Most observations scored in one call.
    """

    def __init__(self, predictor: Predictor, max_batch: int = 64) -> None:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        self.predictor = predictor
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conforto-predict")

    async def predict(self, observation: dict[str, Any]) -> dict[str, Any]:
        """The prediction for one observation (see :meth:`Predictor.predict`)."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending.append((observation, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                rows = [observation for observation, _ in batch]
                try:
                    results = await loop.run_in_executor(
                        self._executor, self.predictor.predict, rows
                    )
                except Exception as exc:  # every waiting request learns of the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
