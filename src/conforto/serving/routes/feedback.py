"""``/feedback``: an occupant's actual vote about a prediction."""

from __future__ import annotations

import logging
from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from starlette.exceptions import HTTPException

from conforto.errors import LogUnavailable
from conforto.serving.deps import PredictionLogDep
from conforto.serving.schemas import FeedbackRequest, FeedbackResponse

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackResponse,
    responses={
        404: {"description": "No such prediction."},
        503: {"description": "The prediction log cannot be reached."},
    },
)
async def give_feedback(vote: FeedbackRequest, predlog: PredictionLogDep) -> dict[str, Any]:
    """Record an occupant's actual vote for a prediction (every vote is kept)."""
    try:
        known = await to_thread.run_sync(predlog.known, vote.prediction_id)
    except LogUnavailable as exc:
        log.warning("feedback: the prediction log cannot be asked: %s", exc)
        raise LogUnavailable(
            "the prediction log's database cannot be reached: send the vote again later"
        ) from None
    if not known:
        raise HTTPException(
            404,
            f"no prediction {vote.prediction_id}: send the prediction_id a /predict answer gave",
        )
    if not predlog.add_feedback(vote.prediction_id, vote.thermal_sensation):
        raise LogUnavailable("the prediction log is full: send the vote again later")
    return {"prediction_id": vote.prediction_id, "thermal_sensation": vote.thermal_sensation}
