"""The model's answer for one observation: one frozen type from the scorer through the log to
the response.

The service's scorer builds a :class:`Prediction`, the prediction log spools it (with the
inputs and the request's context, :mod:`.records`), and the API returns it as it is: its
schema is the ``Prediction`` of the OpenAPI document (pydantic reads these dataclasses and
their field descriptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

#: A thermal sensation class.
Sensation = Literal["cool", "neutral", "warm"]


@dataclass(frozen=True, slots=True)
class Probabilities:
    """Calibrated class probabilities (sum to 1)."""

    cool: Annotated[float, Field(description="P(vote < -0.5)")]
    neutral: Annotated[float, Field(description="P(-0.5 <= vote <= 0.5)")]
    warm: Annotated[float, Field(description="P(vote > 0.5)")]


@dataclass(frozen=True, slots=True)
class Preference:
    """What change the occupant would ask for, as calibrated probabilities (sum to 1)."""

    cooler: Annotated[float, Field(description="P(the occupant wants it cooler)")]
    no_change: Annotated[float, Field(description="P(the occupant wants no change)")]
    warmer: Annotated[float, Field(description="P(the occupant wants it warmer)")]


@dataclass(frozen=True, slots=True)
class Adaptation:
    """The site adaptation an answer had: what its site's occupants' earlier votes taught."""

    site: Annotated[str, Field(description="The site whose votes adjusted the answer.")]
    votes: Annotated[int, Field(description="How many of the site's votes it learned from.")]
    version: Annotated[
        int,
        Field(description="The adaptation's state: the last vote it learned (an increasing id)."),
    ]
    zero_shot_class: Annotated[
        Sensation, Field(description="The class the model answers without the adaptation.")
    ]
    zero_shot: Annotated[
        Probabilities, Field(description="The model's probabilities without the adaptation.")
    ]
    zero_shot_dissatisfied: Annotated[
        float | None,
        Field(description="The model's P(dissatisfied) without the adaptation (null: no heads)."),
    ] = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's answer for one observation."""

    prediction_id: Annotated[str, Field(description="Id to send feedback about this prediction.")]
    predicted_class: Sensation
    probabilities: Probabilities
    model_version: str
    pmv: Annotated[
        float | None,
        Field(description="PMV after ISO 7730 for the same inputs; null outside its limits."),
    ]
    ppd: Annotated[
        float | None, Field(description="PPD after ISO 7730 [%]; null outside its limits.")
    ]
    notes: Annotated[
        tuple[str, ...], Field(description="What was assumed, e.g. tr taken equal to ta.")
    ]
    prediction_set: Annotated[
        tuple[Sensation, ...],
        Field(
            description="The classes the occupant's vote falls in with probability `coverage` "
            "(conformal prediction, calibrated on buildings the model had not seen), in the "
            "order cool, neutral, warm; always holds predicted_class."
        ),
    ]
    coverage: Annotated[
        float,
        Field(
            description="Confidence level of prediction_set (the request's, or the service's "
            "default)."
        ),
    ]
    dissatisfied: Annotated[
        float | None,
        Field(
            description="P(the occupant votes ±2 or ±3: hot, warm, cool or cold), calibrated on "
            "buildings the model had not seen: a data-driven PPD (as a probability, 0-1; ISO's "
            "is `ppd` [%]). Null for a model without occupant-response heads."
        ),
    ]
    unacceptable: Annotated[
        float | None,
        Field(
            description="P(the occupant finds the thermal environment unacceptable), 0-1. Null "
            "for a model without occupant-response heads."
        ),
    ]
    preference: Annotated[
        Preference | None,
        Field(
            description="The change the occupant would ask for. Null for a model without "
            "occupant-response heads."
        ),
    ]
    adaptation: Annotated[
        Adaptation | None,
        Field(
            description="The site adaptation applied (the request named a site whose occupants "
            "have voted); null: the model's answer as it is (zero-shot)."
        ),
    ] = None
