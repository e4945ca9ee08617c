"""The fast path: validated requests → a numeric matrix → the booster. No DataFrame per request."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from conforto._data.categories import normalise_value
from conforto._data.target import CLASS_NAMES
from conforto._model.heads import COLUMNS as HEAD_COLUMNS
from conforto._model.inputs import Observation
from conforto._physics.features import PHYSICS_INPUTS, comfort_arrays
from conforto._predictions.answer import Adaptation, Prediction, Preference, Probabilities
from conforto._predictions.ids import new_ids
from conforto._predictions.records import OCCUPANT
from conforto._settings import DEFAULT_LEVEL
from conforto._uncertainty.sets import set_labels

if TYPE_CHECKING:
    import asyncio

    from conforto._model.artifact import ThermalModel
    from conforto._predictions.records import Kind
    from conforto._serving.adaptation import SiteAdaptations

#: :func:`normalise_value` remembered: a service sees the same few spellings again and again.
_normalise = lru_cache(maxsize=4096)(normalise_value)


#: Where P(dissatisfied) is among the heads' answers.
DISSATISFIED = HEAD_COLUMNS.index("p_dissatisfied")
#: An ordinary room, scored once after loading so the first request finds everything warm.
WARM_UP: Observation = {"ta": 22.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6}
#: Each row's occupant responses: P(dissatisfied), P(unacceptable) and the preference.
Responses = tuple[float | None, float | None, Preference | None]
#: The occupant responses of a model without heads.
NO_RESPONSES: Responses = (None, None, None)


class Predictor:
    """Score observations (dicts of canonical inputs) with a loaded model.

    Parameters
    ----------
    model
        The loaded artifact.
    version
        Version reported in responses (the registry version when served from the registry).
    coverage
        Confidence level of the prediction sets when an observation does not ask for one.
    adaptations
        Site adaptation of the answers for sites whose occupants voted; ``None``: zero-shot.
    """

    def __init__(
        self,
        model: ThermalModel,
        version: str,
        coverage: float = DEFAULT_LEVEL,
        adaptations: SiteAdaptations | None = None,
    ) -> None:
        self.model = model
        self.version = version
        self.coverage = coverage
        self.adaptations = adaptations
        self.features = model.spec.features
        self.derived = model.spec.derived
        numeric = [f.name for f in self.features if f.kind == "numeric"]
        #: Numeric inputs read from each observation: the model's and the physics features'.
        self.columns = list(dict.fromkeys([*numeric, *PHYSICS_INPUTS]))
        self.physics_at = {c: self.columns.index(c) for c in PHYSICS_INPUTS}
        self.numeric = [
            (j, self.columns.index(f.name))
            for j, f in enumerate(self.features)
            if f.kind == "numeric"
        ]
        self.categorical = [
            (j, f.name, {level: float(i) for i, level in enumerate(f.levels)})
            for j, f in enumerate(self.features)
            if f.kind == "categorical"
        ]
        self.derived_at = [(j, f.name) for j, f in enumerate(self.features) if f.kind == "derived"]
        self.physics = sorted(set(self.derived) | {"pmv_iso", "ppd_iso"})
        self.adaptive = "t_cmf" in self.derived or "dt_cmf" in self.derived

    def matrix(
        self, observations: Sequence[Observation]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[list[str]]]:
        """The model matrix, the ISO 7730 PMV/PPD and the notes for each observation."""
        table = np.array(  # None (not given) becomes NaN
            [[o.get(c) for c in self.columns] for o in observations], dtype=np.float64
        ).reshape(len(observations), len(self.columns))
        physics = comfort_arrays({c: table[:, i] for c, i in self.physics_at.items()}, self.physics)
        out = np.full((len(observations), len(self.features)), np.nan)
        for j, column in self.numeric:
            out[:, j] = table[:, column]
        for j, name in self.derived_at:
            out[:, j] = physics[name]
        notes: list[list[str]] = []
        pmv_missing = np.isnan(physics["pmv_iso"]).tolist()
        for i, o in enumerate(observations):
            row: list[str] = []
            if o.get("tr") is None:
                row.append("tr (mean radiant temperature) taken equal to ta")
            if pmv_missing[i]:
                row.append("pmv/ppd not given: inputs outside ISO 7730's applicability")
            if self.adaptive and o.get("t_mot_isd") is None:
                row.append("no t_mot_isd: the adaptive comfort features are unknown")
            for j, name, codes in self.categorical:
                value = _normalise(name, o.get(name))
                if value is None:
                    continue
                if value in codes:
                    out[i, j] = codes[value]
                else:
                    row.append(f"{name} {value!r} not seen in training: treated as unknown")
            notes.append(row)
        return out, physics, notes

    def sets(
        self,
        observations: Sequence[Observation],
        proba: np.ndarray,
        decisions: np.ndarray,
        levels: Sequence[float | None],
    ) -> tuple[list[tuple[str, ...]], list[float]]:
        """Each row's prediction set and its level."""
        conformal = self.model.conformal
        chosen = [self.coverage if level is None else level for level in levels]
        climates = None
        if conformal.by == "climate":
            climates = [_normalise("climate", o.get("climate")) for o in observations]
        members = conformal.sets(proba, np.asarray(chosen), decisions, climates)
        return set_labels(members), chosen

    def classify(
        self, observations: Sequence[Observation], matrix: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Only the classes (indices into ``CLASS_NAMES``) and their probabilities: what a
        shadow challenger needs, without the sets, responses and notes. ``matrix``: the
        observations already encoded for these very features (by production's predictor).
        """
        if matrix is None:
            matrix, _, _ = self.matrix(observations)
        proba = self.model.predict_matrix(matrix)
        return self.model.decide(proba), proba

    def predict(
        self,
        observations: Sequence[Observation],
        levels: Sequence[float | None] = (),
        sites: Sequence[str | None] = (),
    ) -> list[Prediction]:
        """Predictions, one per observation, in order.

        ``levels``: the confidence level each observation's prediction set was asked at
        (``None``, or none given: the predictor's ``coverage``); ``sites``: the site each
        names, whose adaptation adjusts its answer (none given: zero-shot).
        """
        return self.score(observations, levels, sites)[0]

    def score(
        self,
        observations: Sequence[Observation],
        levels: Sequence[float | None] = (),
        sites: Sequence[str | None] = (),
    ) -> tuple[list[Prediction], np.ndarray]:
        """:meth:`predict`'s answers, and the model matrix they were scored from."""
        matrix, physics, notes = self.matrix(observations)
        proba = self.model.predict_matrix(matrix)
        responses = self.responses(matrix)
        proba, responses, adapted = self.adapt(observations, proba, responses, sites)
        decided = self.model.decide(proba)
        levels = levels or [None] * len(observations)
        sets, coverage = self.sets(observations, proba, decided, levels)
        rows = zip(
            decided.tolist(),
            proba.tolist(),
            physics["pmv_iso"].tolist(),
            physics["ppd_iso"].tolist(),
            notes,
            new_ids(len(observations)),
            sets,
            coverage,
            responses,
            adapted,
            strict=True,
        )
        return [
            Prediction(
                prediction_id,
                CLASS_NAMES[decision],
                Probabilities(*p),
                self.version,
                None if math.isnan(pmv) else round(pmv, 3),
                None if math.isnan(ppd) else round(ppd, 2),
                tuple(row_notes),
                members,
                level,
                dissatisfied,
                unacceptable,
                preference,
                adaptation,
            )
            for decision, p, pmv, ppd, row_notes, prediction_id, members, level, (
                dissatisfied,
                unacceptable,
                preference,
            ), adaptation in rows
        ], matrix

    def adapt(
        self,
        observations: Sequence[Observation],
        proba: np.ndarray,
        responses: list[Responses],
        sites: Sequence[str | None],
    ) -> tuple[np.ndarray, list[Responses], list[Adaptation | None]]:
        """The answers with their sites' adaptations (P(dissatisfied) too; the other responses
        stay the model's), and what each row had (``None``: zero-shot).
        """
        none: list[Adaptation | None] = [None] * len(observations)
        if self.adaptations is None or not any(sites):
            return proba, responses, none
        ta = [_number(o.get("ta")) for o in observations]
        upset = None
        if self.model.heads is not None:
            upset = np.array([np.nan if r[0] is None else r[0] for r in responses])
        adapted, adapted_upset, states = self.adaptations.adjust(
            self.version, proba, sites, ta, upset
        )
        if not any(states):
            return proba, responses, none
        zero_shot = self.model.decide(proba).tolist()
        applied = [
            None
            if state is None
            else Adaptation(
                state.site,
                state.votes,
                state.version,
                CLASS_NAMES[decision],
                Probabilities(*p),
                answers[0],
            )
            for state, decision, p, answers in zip(
                states, zero_shot, proba.tolist(), responses, strict=True
            )
        ]
        if adapted_upset is not None:
            responses = [
                answers if state is None else (float(d), *answers[1:])
                for state, d, answers in zip(states, adapted_upset.tolist(), responses, strict=True)
            ]
        return adapted, responses, applied

    def zero_shot(
        self, observations: Sequence[Observation]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's own probabilities of observations (rows × 3) and its P(dissatisfied)
        (``None`` without heads): what site adaptation learns from.
        """
        matrix, _, _ = self.matrix(observations)
        heads = self.model.heads
        upset = None if heads is None else heads.predict(matrix)[:, DISSATISFIED]
        return self.model.predict_matrix(matrix), upset

    def responses(self, matrix: np.ndarray) -> list[Responses]:
        """Each row's occupant responses (``None`` each without the heads)."""
        heads = self.model.heads
        if heads is None:
            return [NO_RESPONSES] * len(matrix)
        return [(d, u, Preference(c, n, w)) for d, u, c, n, w in heads.predict(matrix).tolist()]


def _number(value: float | str | None) -> float | None:
    """An input that is a number, or ``None``."""
    return value if isinstance(value, float | int) else None


class Asked(NamedTuple):
    """What the service passes along with a request's observation through the batcher."""

    #: ``time.perf_counter()`` when the request arrived [s].
    start: float
    #: The building or site the caller named, if any.
    site: str | None
    #: Who asked.
    kind: Kind = OCCUPANT


#: Called in the batcher's thread with each batch, before any of its answers is sent: the
#: observations, what each request passed along (:meth:`MicroBatcher.predict`'s ``context``),
#: the predictions and the model matrix they came from.
AfterBatch = Callable[[list[Observation], list[Any], list[Prediction], np.ndarray], None]


class MicroBatcher:
    """Gather concurrent requests and predict them together, off the event loop.

    The event loop only queues an observation and awaits its future; one worker thread scores
    whatever has queued up in one vectorised call, then hands the batch to ``after`` (the
    prediction log) before the answers go back. Under load, batches grow by themselves and
    the per-call costs (thread hand-off, PMV, booster, log write) are shared; a lone request
    goes straight through.

    Parameters
    ----------
    predictor
        The predictor to call.
    max_batch
        Most observations scored in one call.
    after
        Called with every batch in the worker thread (see :data:`AfterBatch`).
    """

    def __init__(
        self, predictor: Predictor, max_batch: int = 64, after: AfterBatch | None = None
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.predictor = predictor
        self.max_batch = max_batch
        self.after = after
        self._pending: list[tuple[Observation, float | None, Any, asyncio.Future[Prediction]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conforto-predict")

    async def predict(
        self, observation: Observation, context: Any = None, level: float | None = None
    ) -> Prediction:
        """The prediction for one observation (see :meth:`Predictor.predict`), its set at
        ``level``; ``context`` goes to ``after`` with it.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append((observation, level, context, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    def _score(
        self, rows: list[Observation], levels: list[float | None], contexts: list[Any]
    ) -> list[Prediction]:
        sites = [context.site if isinstance(context, Asked) else None for context in contexts]
        results, matrix = self.predictor.score(rows, levels, sites)
        if self.after is not None:
            self.after(rows, contexts, results, matrix)
        return results

    async def _drain(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                rows = [observation for observation, _, _, _ in batch]
                levels = [level for _, level, _, _ in batch]
                contexts = [context for _, _, context, _ in batch]
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._score, rows, levels, contexts
                    )
                except Exception as exc:  # every waiting request learns of the failure
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
