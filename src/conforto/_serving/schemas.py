"""Request and response schemas; limits come from the one table of physical bounds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model

from conforto._data.bounds import PHYSICAL_BOUNDS
from conforto._data.categories import DOMAINS
from conforto._model.inputs import EXAMPLE_OBSERVATION, INPUTS, Input
from conforto._predictions.answer import Prediction


def _numeric_field(name: str, required: bool) -> tuple[Any, Any]:
    b = PHYSICAL_BOUNDS[name]
    description = f"{b.description} [{b.unit}], {b.hard_min:g} to {b.hard_max:g}"
    if b.soft_min != b.hard_min or b.soft_max != b.hard_max:
        description += f" (typical {b.soft_min:g} to {b.soft_max:g})"
    field = Field(
        ... if required else None,
        ge=b.hard_min,
        le=b.hard_max,
        description=description,
        allow_inf_nan=False,
    )
    return (float if required else float | None), field


def _categorical_field(name: str) -> tuple[Any, Any]:
    if name not in DOMAINS:  # an open set of values (countries): text the model may not know
        return Annotated[str, Field(min_length=1, max_length=60)] | None, Field(
            None,
            description=f"{name.replace('_', ' ').capitalize()} of the building (lower case "
            f"English name, e.g. 'brazil'); a {name} the model has not seen is treated as "
            "unknown.",
        )
    values = DOMAINS[name]
    kind = Literal[values]  # type: ignore[valid-type]
    return kind | None, Field(
        None, description=f"{name.replace('_', ' ')}, one of: {', '.join(values)}"
    )


def _field(spec: Input) -> tuple[Any, Any]:
    if spec.kind == "numeric":
        return _numeric_field(spec.name, spec.required)
    return _categorical_field(spec.name)


#: The API's fields, from the one list of inputs: required ones first; then ``site``, which
#: the model does not read.
_fields: dict[str, Any] = {i.name: _field(i) for i in sorted(INPUTS, key=lambda i: not i.required)}
_fields["site"] = (
    Annotated[str, Field(min_length=1, max_length=100)] | None,
    Field(
        None,
        description="The building or site of the observation (any identifier, not a model "
        "input): the answer is adjusted by what the site's occupants taught with their votes "
        "(site adaptation), and stored with it so that their votes train later models grouped "
        "by site.",
    ),
)

Observation = create_model(  # one observation: what a caller measures and knows
    "Observation",
    __config__=ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [dict[str, JsonValue](EXAMPLE_OBSERVATION)]},
    ),
    **_fields,
)
Observation.__doc__ = "One observation of an occupant's thermal environment."


class BatchRequest(BaseModel):
    """Several observations."""

    model_config = ConfigDict(extra="forbid")
    observations: list[Observation] = Field(min_length=1)


class BatchResponse(BaseModel):
    """One prediction per observation, in order."""

    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    """An occupant's actual vote about a prediction they received."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    prediction_id: str = Field(
        min_length=32, max_length=32, pattern="^[0-9a-f]{32}$", description="From /predict."
    )
    thermal_sensation: float = Field(
        ge=-3,
        le=3,
        description="The ASHRAE 7-point vote, -3 cold … 0 neutral … +3 hot (decimals allowed).",
    )


class FeedbackResponse(BaseModel):
    """The vote, as recorded."""

    prediction_id: str
    thermal_sensation: float
    recorded: bool = True
    status: Literal["matched", "pending"] = Field(
        description="matched: its prediction is on record (201); pending: the prediction was "
        "answered moments ago elsewhere and is on its way (202), the vote joins it when it lands."
    )


class Reloaded(BaseModel):
    """The outcome of a reload."""

    previous_version: str | None
    model_version: str
    changed: bool


class ChallengerRequest(BaseModel):
    """A challenger to start beside production (``POST /admin/challenger``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1,
        max_length=4096,
        description="A registry version number (`production`: a dry run) or a model directory "
        "on the server.",
        examples=["3"],
    )
    mode: Literal["shadow", "canary"] = Field(
        "shadow", description="shadow: scored behind production; canary: answers a share."
    )
    canary_percent: float = Field(
        10.0, gt=0, le=100, description="Share of clients a canary answers [%]."
    )


class ChallengerStatus(BaseModel):
    """The challenger in the service, and how its automatic-stop window stands."""

    version: str
    mode: Literal["shadow", "canary"]
    canary_percent: float | None
    state: Literal["running", "stopped"]
    stopped_because: str | None
    started: str
    shadowed: int = Field(description="Predictions the shadow scored.")
    skipped: int = Field(description="Predictions the shadow skipped, being behind.")
    window: dict[str, float | None] = Field(
        description="predictions, error_rate, p99_ms [ms] and disagreement over the window."
    )
