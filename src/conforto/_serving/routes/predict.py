"""``/predict`` (one observation, micro-batched) and ``/predict/batch`` (several)."""

from __future__ import annotations

import time
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

from conforto._predictions.answer import Prediction
from conforto._predictions.records import OCCUPANT, Kind
from conforto._serving.deps import ServiceDep, client_name, service_of
from conforto._serving.runtime import Asked
from conforto._serving.schemas import BatchRequest, BatchResponse, Observation
from conforto._serving.state import ServiceState
from conforto._settings import MAX_LEVEL, MIN_LEVEL

router = APIRouter()
Body = TypeVar("Body", bound=BaseModel)
T = TypeVar("T")
COVERAGE_HELP = (
    f"Confidence level of `prediction_set`, {MIN_LEVEL:g} to {MAX_LEVEL:g}: the share of votes "
    "the sets hold (on buildings the model had not seen). Default: the service's "
    "(`CONFORTO_SERVE__COVERAGE`, 0.9 unless set)."
)
#: ``?coverage=``: the confidence level of the prediction sets.
CoverageQuery = Annotated[
    float | None, Query(ge=MIN_LEVEL, le=MAX_LEVEL, allow_inf_nan=False, description=COVERAGE_HELP)
]
_coverage = TypeAdapter(CoverageQuery)
KIND_HELP = (
    "Who asks: `occupant` (the default: a room people are in), `explorer` (the comfort "
    "explorer's curves), `smoke` (a deploy's smoke test) or `shadow` (a copy of traffic another "
    "deployment answers). Only occupants' predictions count for drift, performance, the votes "
    "exported and retraining."
)
#: ``X-Request-Kind``: who asks.
KindHeader = Annotated[Kind, Header(alias="x-request-kind", description=KIND_HELP)]
_kind = TypeAdapter(Kind)
#: An answer as JSON, serialised by pydantic-core straight from the frozen answer: the routes
#: return it as it is (FastAPI would turn it into a dict, validate that and serialise it).
_answer_json = TypeAdapter(Prediction).dump_json

#: The 422 answer's shape, as FastAPI documents it for routes whose body it parses itself.
VALIDATION_ERROR: dict[str, Any] = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}


def parsed_here(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody``, ``?coverage=`` and ``X-Request-Kind`` of a route that reads
    them itself (:func:`parse_body`, :func:`parse_coverage`, :func:`parse_kind`).

    The body's schema is in the document's components (the batch route's body uses it); the
    parameters are described as FastAPI describes :data:`CoverageQuery` and
    :data:`KindHeader` on the batch route.
    """
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    coverage = {
        "name": "coverage",
        "in": "query",
        "required": False,
        "description": COVERAGE_HELP,
        "schema": {**_coverage.json_schema(), "title": "Coverage"},
    }
    kind = {
        "name": "x-request-kind",
        "in": "header",
        "required": False,
        "description": KIND_HELP,
        "schema": {
            **_kind.json_schema(),
            "description": KIND_HELP,
            "default": OCCUPANT,
            "title": "X-Request-Kind",
        },
    }
    return {
        "parameters": [coverage, kind],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
    }


def _validated(adapter: TypeAdapter[T], raw: str, loc: tuple[str, str]) -> T:
    """``raw`` validated by ``adapter``; when it fails, the 422 FastAPI gives for the parameter
    at ``loc``.
    """
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": loc} for e in errors]) from None


def parse_coverage(request: Request) -> float | None:
    """``?coverage=``, validated as FastAPI validates :data:`CoverageQuery` (same 422s), without
    its parameter solving on the hot path.
    """
    raw = request.query_params.get("coverage")
    return None if raw is None else _validated(_coverage, raw, ("query", "coverage"))


def parse_kind(request: Request) -> Kind:
    """``X-Request-Kind``, validated as FastAPI validates :data:`KindHeader` (same 422s)."""
    raw = request.headers.get("x-request-kind")
    return OCCUPANT if raw is None else _validated(_kind, raw, ("header", "x-request-kind"))


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body, validated by pydantic straight from the bytes.

    FastAPI's own path (``json.loads``, then dependency solving and validation of the dict)
    costs more than the prediction it leads to; errors are the same 422 either way.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def client_of(request: Request, service: ServiceState) -> str | None:
    """Who asks, for a canary's sticky choice: ``X-Client-Id``, else the client's address
    (``None`` without a canary: nothing to choose).
    """
    if service.challenger is None or service.challenger.mode != "canary":
        return None
    return client_name(request)


@router.post(
    "/predict",
    response_model=Prediction,
    responses={422: VALIDATION_ERROR, 503: {"description": "No model."}},
    openapi_extra=parsed_here(Observation),
)
async def predict(request: Request) -> Response:
    """Predict the thermal sensation of one observation, with the set of classes its vote
    falls in at the confidence level ``coverage``.
    """
    start = time.perf_counter()
    service = await service_of(request)  # not a dependency: the hot path (see service_of)
    coverage, kind = parse_coverage(request), parse_kind(request)
    observation = await parse_body(request, Observation)  # 422 before 503, as FastAPI's
    inputs = observation.model_dump(exclude_none=True)
    site = inputs.pop("site", None)  # stored with the prediction, not a model input
    asked = Asked(start, site, kind)
    answer = await service.predict(inputs, asked, coverage, client_of(request, service))
    return Response(_answer_json(answer), media_type="application/json")


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses={413: {"description": "Too many observations."}},
)
async def predict_batch(
    request: Request,
    batch: BatchRequest,
    service: ServiceDep,
    coverage: CoverageQuery = None,
    kind: KindHeader = OCCUPANT,
) -> Response:
    """Predict several observations (at most ``CONFORTO_SERVE__MAX_BATCH``), each with its
    prediction set at ``coverage``.
    """
    limit = service.settings.serve.max_batch
    if len(batch.observations) > limit:
        raise HTTPException(
            413, f"{len(batch.observations)} observations: at most {limit} per request"
        )
    start = time.perf_counter()
    rows = [o.model_dump(exclude_none=True) for o in batch.observations]
    asked = [Asked(start, row.pop("site", None), kind) for row in rows]
    client = client_of(request, service)
    answers = await to_thread.run_sync(service.predict_rows, rows, asked, coverage, client)
    return Response(
        BatchResponse(predictions=answers).model_dump_json(), media_type="application/json"
    )
