"""What the service owns while it runs: the model, the micro-batcher, the prediction log and the
poller that follows the production pointer.

One :class:`ServiceState` lives on ``app.state.service``; routes reach it through the
dependencies of :mod:`conforto._serving.deps`, so a test can hand a route any state it likes.
Nothing here knows about HTTP: failures are :mod:`conforto.errors` exceptions, which the app's
handlers turn into status codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from functools import partial
from typing import TYPE_CHECKING

from anyio import to_thread

from conforto._data.target import CLASS_NAMES
from conforto._predictions.log import PredictionLog
from conforto._predictions.records import KINDS
from conforto._predictions.spool import Spool
from conforto._predictions.writer import LogProcess
from conforto._serving import telemetry
from conforto._serving.adaptation import SiteAdaptations
from conforto._serving.challenger_slot import ChallengerSlot
from conforto._serving.loading import Runtime, load_runtime
from conforto._serving.ratelimit import TokenBuckets
from conforto._serving.runtime import Asked, MicroBatcher, Predictor
from conforto._serving.schemas import ChallengerStatus, Reloaded
from conforto.errors import ConfortoError, ModelUnavailable, ReloadError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from conforto._model.inputs import Observation
    from conforto._predictions.answer import Prediction
    from conforto._serving.challenger import Challenger, Mode
    from conforto._serving.challenger_slot import VersionResolver
    from conforto._settings import Settings

log = logging.getLogger(__name__)


class ServiceState:
    """The service's runtime objects, started and stopped with the app.

    Parameters
    ----------
    settings
        Project settings (log database, capacities, polling, admin token).
    model_dir
        Model directory to serve; ``None`` serves the production version and follows it.
    resolver
        Where a challenger named by its registry version is found; ``None``: only challengers
        given as model directories.
    """

    def __init__(
        self,
        settings: Settings,
        model_dir: Path | None = None,
        resolver: VersionResolver | None = None,
    ) -> None:
        self.settings = settings
        self.model_dir = model_dir
        self.challengers = ChallengerSlot(settings, resolver, partial(self._after, arm="canary"))
        self.runtime = Runtime(error="starting")
        self.batcher: MicroBatcher | None = None
        self.log: PredictionLog | None = None
        self.adaptations: SiteAdaptations | None = None
        self.vote_limit = TokenBuckets(settings.serve.votes_per_minute)
        self._poller: asyncio.Task[None] | None = None
        self._swap = asyncio.Lock()
        self._per_class = {
            (name, kind): telemetry.PREDICTIONS.labels(name, kind)
            for name in CLASS_NAMES
            for kind in KINDS
        }
        self._per_size = {n: telemetry.SET_SIZES.labels(str(n)) for n in (1, 2, 3)}
        self._adapted = {c: telemetry.ADAPTED.labels(str(c).lower()) for c in (True, False)}
        self._latency = {
            arm: telemetry.MODEL_LATENCY.labels(arm) for arm in ("production", "canary")
        }

    # ---------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load the model, start the prediction log and, serving production, the poller."""
        serve = self.settings.serve
        spool = Spool(self.settings.spool_dir, max_bytes=serve.spool_max_bytes)
        writer = LogProcess(
            self.settings.prediction_log_url,
            spool.directory,
            spool.owner,
            max_bytes=serve.spool_max_bytes,
            horizon=serve.feedback_horizon,
        )
        self.log = PredictionLog(
            spool,
            writer.start(),
            horizon=serve.feedback_horizon,
            counters=telemetry.LOG_COUNTERS,
        ).start()
        self.challengers.log = self.log
        if serve.adaptation.enabled:
            self.adaptations = SiteAdaptations(writer, serve.adaptation).start()
        self.serve(load_runtime(self.model_dir, self.settings))
        if self.model_dir is None and self.settings.serve.poll_seconds > 0:
            self._poller = asyncio.create_task(self._follow_production())
        wanted = self.settings.serve.challenger
        if wanted.model is not None:
            try:
                await self.set_challenger(wanted.model, wanted.mode, wanted.canary_percent)
            except ReloadError as exc:  # production serves alone: say why
                log.error("no challenger: %s", exc)

    async def stop(self) -> None:
        """Stop polling and predicting; flush the prediction log."""
        if self._poller is not None:
            self._poller.cancel()
        if self.batcher is not None:
            self.batcher.close()
        self.challengers.close()
        if self.adaptations is not None:
            self.adaptations.close()
        if self.log is not None:
            await to_thread.run_sync(self.log.close)

    def serve(self, runtime: Runtime) -> None:
        """Answer with ``runtime`` from now on (in-flight batches finish on the previous one)."""
        previous = self.runtime.predictor.version if self.runtime.predictor else None
        self.runtime = runtime
        if runtime.predictor is None:
            telemetry.set_unready(runtime.no_production)
            return
        if self.batcher is None:
            self.batcher = MicroBatcher(runtime.predictor, after=self._after)
        self.batcher.predictor = runtime.predictor
        if self.adaptations is not None:  # production's answers only, never a challenger's
            predictor = runtime.predictor
            predictor.adaptations = self.adaptations
            self.adaptations.follow(
                predictor.version, predictor.model.manifest.adaptation, predictor.zero_shot
            )
        accuracy = runtime.predictor.model.manifest.metrics.accuracy
        telemetry.set_model(runtime.predictor.version, previous, accuracy)
        if self.challenger is not None and self.challenger.version == runtime.predictor.version:
            self.challengers.replace(None, "promoted")  # it answers as production now

    # ------------------------------------------------------------------------------ predictions

    @property
    def predictor(self) -> Predictor:
        """The predictor in service.

        Raises
        ------
        ModelUnavailable
            When no model is loaded, with the reason.
        """
        if self.runtime.predictor is None:
            raise self._no_model()
        return self.runtime.predictor

    def _no_model(self) -> ModelUnavailable:
        return ModelUnavailable(f"no model loaded: {self.runtime.error}")

    async def predict(
        self,
        inputs: Observation,
        asked: Asked,
        coverage: float | None = None,
        client: str | None = None,
    ) -> Prediction:
        """One observation's prediction, scored with whatever else is waiting (micro-batch),
        and in the prediction log's spool before it is returned: production's, or a canary
        challenger's when it answers ``client``.

        Parameters
        ----------
        inputs
            The inputs given (no ``None`` values).
        asked
            When the request arrived, the site it named and who asked.
        coverage
            Confidence level of the prediction set; ``None``: the service's default.
        client
            Who asks (``X-Client-Id``, else the address): a canary answers a share of them.

        Raises
        ------
        ModelUnavailable
            When no model is loaded.
        """
        if self.runtime.predictor is None or self.batcher is None:
            raise self._no_model()
        challenger = self.challenger
        if challenger is not None and client is not None and challenger.answers(client):
            try:
                return await challenger.batcher.predict(inputs, asked, coverage)
            except Exception as exc:
                challenger.failed(asked.start, exc)
        return await self.batcher.predict(inputs, asked, coverage)

    def predict_rows(
        self,
        rows: list[Observation],
        asked: list[Asked],
        coverage: float | None = None,
        client: str | None = None,
    ) -> list[Prediction]:
        """Several observations' predictions in one call, spooled before they are returned
        (blocking: run it in a thread). Parameters as :meth:`predict`'s, one ``asked`` per row.
        """
        levels = [coverage] * len(rows)
        challenger = self.challenger
        if challenger is not None and client is not None and challenger.answers(client):
            try:
                results, matrix = challenger.predictor.score(rows, levels)
            except Exception as exc:
                challenger.failed(asked[0].start, exc)
            else:
                challenger.canary_answered(rows, asked, results, matrix)
                return results
        results, matrix = self.predictor.score(rows, levels, [a.site for a in asked])
        self._after(rows, asked, results, matrix)
        return results

    def _after(
        self,
        rows: list[Observation],
        asked: list[Asked],
        results: list[Prediction],
        matrix: np.ndarray,
        arm: str = "production",
    ) -> None:
        """Count and spool a batch (in its thread); hand production's to a shadow challenger."""
        kinds = [a.kind for a in asked]
        classes = [r.predicted_class for r in results]
        for key, count in Counter(zip(classes, kinds, strict=True)).items():
            self._per_class[key].inc(count)
        for size, count in Counter(len(r.prediction_set) for r in results).items():
            self._per_size[size].inc(count)
        for changed, count in Counter(
            r.predicted_class != r.adaptation.zero_shot_class
            for r in results
            if r.adaptation is not None
        ).items():
            self._adapted[changed].inc(count)
        now = time.perf_counter()
        latencies = [(now - a.start) * 1000.0 for a in asked]
        if results:
            telemetry.MODEL_PREDICTIONS.labels(arm, results[0].model_version).inc(len(results))
        for latency in latencies:
            self._latency[arm].observe(latency / 1000.0)
        if self.log is not None:  # arm null: production answered
            sites = [a.site for a in asked]
            logged = None if arm == "production" else arm
            self.log.add_predictions(results, rows, latencies, sites, kinds, logged)
        challenger = self.challenger
        if arm == "production" and challenger is not None and self.runtime.predictor is not None:
            challenger.shadow(rows, results, (self.runtime.predictor.features, matrix))

    # ------------------------------------------------------------------------------ challenger

    @property
    def challenger(self) -> Challenger | None:
        """The challenger beside production, if any (running or stopped)."""
        return self.challengers.current

    async def set_challenger(self, spec: str, mode: Mode, percent: float) -> ChallengerStatus:
        """Load a challenger beside production (in place of any other) and start it.

        Parameters
        ----------
        spec
            A model directory or a registry version (``production``: a dry run).
        mode
            ``shadow`` or ``canary``.
        percent
            The canary's share of clients [%].

        Returns
        -------
        dict
            Its status (:meth:`Challenger.status`).

        Raises
        ------
        ReloadError
            When it cannot be loaded; the challenger before (if any) keeps running.
        """
        async with self._swap:
            challenger = await to_thread.run_sync(self.challengers.load, spec, mode, percent)
            self.challengers.replace(challenger)
            return challenger.status()

    def remove_challenger(self) -> ChallengerStatus | None:
        """Take the challenger out (production answers everything); its last status."""
        return self.challengers.replace(None)

    # ---------------------------------------------------------------------------------- reloads

    async def reload(self) -> Reloaded:
        """Load the current model beside the served one, then swap them in one assignment.

        Raises
        ------
        ReloadError
            When the new model cannot be loaded; the old one keeps serving.
        """
        async with self._swap:
            fresh = await to_thread.run_sync(load_runtime, self.model_dir, self.settings)
            previous = self.runtime.predictor.version if self.runtime.predictor else None
            if fresh.predictor is None:
                telemetry.RELOADS.labels("failed").inc()
                raise ReloadError(f"reload failed: {fresh.error}; still serving version {previous}")
            changed = fresh.sha256 != self.runtime.sha256
            if changed:
                self.serve(fresh)
                log.info("now serving version %s (was %s)", fresh.predictor.version, previous)
            telemetry.RELOADS.labels("swapped" if changed else "unchanged").inc()
            return Reloaded(
                previous_version=previous, model_version=fresh.predictor.version, changed=changed
            )

    async def _follow_production(self) -> None:
        """Poll the production pointer; swap in a new production version when it changes."""
        from conforto._registry.pointer import read_pointer

        while True:
            await asyncio.sleep(self.settings.serve.poll_seconds)
            try:
                pointer = read_pointer(self.settings.registry_dir)
                if pointer is not None and pointer.sha256 != self.runtime.sha256:
                    await self.reload()
            except ConfortoError as exc:
                log.warning("production model not reloaded: %s", exc)
