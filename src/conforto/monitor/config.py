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
        description="Wasserstein distance, in reference standard deviations, above which a "
        "numeric input has drifted.",
    )
    categorical_threshold: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Jensen-Shannon distance (base 2, 0 to 1) above which a categorical input "
        "has drifted.",
    )
    min_rows: int = Field(
        200,
        ge=10,
        description="Values an input needs on each side before it may be called drifted.",
    )
