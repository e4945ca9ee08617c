"""The monitors' thresholds: the ``monitor:`` section of ``configs/pipeline.yaml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MonitorConfig(BaseModel):
    """Thresholds of drift and performance monitoring."""

    model_config = ConfigDict(extra="forbid")

    drift_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of drifted inputs (among those with enough data) at which the "
        "data set as a whole has drifted (Evidently's convention).",
    )
    numeric_threshold: float = Field(
        0.1,
        gt=0,
        description="Population stability index (over the reference's deciles) above which a "
        "numeric input has drifted.",
    )
    categorical_threshold: float = Field(
        0.1,
        gt=0,
        description="Population stability index (over the levels) above which a categorical "
        "input has drifted.",
    )
    min_rows: int = Field(
        500,
        ge=10,
        description="Values an input needs on each side before it may be called drifted "
        "(fewer, and chance alone can pass the thresholds).",
    )
    min_votes: int = Field(
        30, ge=1, description="Votes a window needs before its realised figures are given."
    )
    estimated_tolerance: float = Field(
        0.05,
        ge=0,
        description="How far the estimated accuracy or macro-F1 may fall below the validation "
        "figure before the model counts as degraded.",
    )
    realised_tolerance: float = Field(
        0.02,
        ge=0,
        description="Margin below the validation figure that the whole realised 95 % interval "
        "must pass before the model counts as degraded.",
    )
    max_result_age_hours: float = Field(
        24.0,
        gt=0,
        description="`monitor check` reruns a monitor whose last result is older [h].",
    )
    retrain_top_inputs: int = Field(
        5, ge=1, description="Drift on one of this many most important inputs retrains."
    )
    retrain_min_votes: int = Field(
        500, ge=1, description="This many votes since the model was trained retrain it."
    )
    retrain_cooldown_hours: float = Field(
        24.0,
        gt=0,
        description="`monitor check` starts training at most once in this span, and not while "
        "a training run is under way [h].",
    )
