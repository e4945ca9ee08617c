"""``/feedback``: an occupant's actual vote about a prediction."""

from __future__ import annotations

import logging
import math

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from conforto._serving import telemetry
from conforto._serving.deps import PredictionLogDep, ServiceDep, client_name
from conforto._serving.schemas import FeedbackRequest, FeedbackResponse
from conforto.errors import LogUnavailable

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackResponse,
    responses={
        202: {
            "model": FeedbackResponse,
            "description": "Accepted as pending: the prediction was answered moments ago by "
            "another process and is not stored yet; the vote joins it when it lands.",
        },
        404: {"description": "No such prediction."},
        429: {
            "description": "This client sent more than CONFORTO_SERVE__VOTES_PER_MINUTE votes "
            "a minute; Retry-After says when to send again."
        },
        503: {"description": "The prediction log cannot be reached or written."},
    },
)
async def give_feedback(
    vote: FeedbackRequest,
    predlog: PredictionLogDep,
    service: ServiceDep,
    request: Request,
    response: Response,
) -> FeedbackResponse:
    """Record an occupant's actual vote for a prediction (every vote is kept). Send
    ``X-Client-Id`` (an occupant's app or device): votes are limited per client, and so is
    what one client's votes teach a site.
    """
    client = client_name(request)
    wait = service.vote_limit.take(client)
    if wait > 0:
        limit = service.settings.serve.votes_per_minute
        raise HTTPException(
            429,
            f"more than {limit} votes a minute from this client: send the vote again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    try:
        found = await to_thread.run_sync(predlog.lookup, vote.prediction_id)
    except LogUnavailable as exc:
        log.warning("feedback: the prediction log cannot be asked: %s", exc)
        raise LogUnavailable(
            "the prediction log's database cannot be reached: send the vote again later"
        ) from None
    if found == "unknown":
        raise HTTPException(
            404,
            f"no prediction {vote.prediction_id}: send the prediction_id a /predict answer gave",
        )
    if not predlog.add_feedback(vote.prediction_id, vote.thermal_sensation, client):  # one write
        raise LogUnavailable("the prediction log cannot be written: send the vote again later")
    status = "matched" if found == "stored" else "pending"
    telemetry.FEEDBACK.labels(status).inc()
    if status == "pending":
        response.status_code = 202
    return FeedbackResponse(
        prediction_id=vote.prediction_id, thermal_sensation=vote.thermal_sensation, status=status
    )
