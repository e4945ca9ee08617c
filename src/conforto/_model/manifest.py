"""The model manifest (``manifest.json``): what an artifact is, typed and validated once.

Every package reads a model's manifest through :class:`Manifest`: a frozen pydantic model of
artifact format :data:`FORMAT_VERSION`, validated when the artifact is read, so a field a
reader relies on is either there with its type or the artifact is refused with a message
naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conforto._adaptation.site import AdaptationSettings
from conforto._model.inputs import Feature
from conforto.errors import ArtifactError

FORMAT_VERSION: Final = 2
BOOSTER = "booster.txt"

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: LightGBM's parameters, as LightGBM takes them: name → a number, a name or a switch.
BoosterParams = dict[str, float | int | str | bool]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Calibration(_Part):
    """The softmax calibration of the booster's raw scores."""

    method: Literal["temperature"] = "temperature"
    temperature: float = Field(gt=0)


class Baselines(_Part):
    """What the model is compared with: the majority class and the probabilistic PMV."""

    majority: tuple[float, float, float]
    #: The probabilistic PMV's fitted coefficients (``coef``, ``intercept``, ``classes``).
    probabilistic_pmv: dict[str, list[Any]]


class BoosterInfo(_Part):
    """How the booster was fitted."""

    params: BoosterParams
    rounds: int = Field(ge=1)
    #: Total gain of each feature's splits.
    feature_importance_gain: dict[str, float]


class TrainingData(_Part):
    """The training set's lineage."""

    sha256: Sha256
    rows: int = Field(ge=1)
    buildings: int = Field(ge=1)
    #: Data files by role (``measurements``, ``metadata``, ``extra``…) → path.
    sources: dict[str, str] = {}
    #: Occupants' votes gathered by the service among the rows (``--extra-data``), and their
    #: sites.
    votes: int = Field(0, ge=0)
    vote_sites: int = Field(0, ge=0)


class CodeLineage(_Part):
    """The code the model was trained with."""

    git_commit: str | None
    conforto: str
    code_sha256: str | None


class Selection(_Part):
    """The model family chosen in cross-validation, and each candidate's macro-F1."""

    selected: str
    macro_f1: dict[str, float]


class Metrics(_Part):
    """The building-grouped cross-validation's headline metrics."""

    accuracy: float
    macro_f1: float
    log_loss: float
    ece: float


class Manifest(_Part):
    """A model artifact's manifest, format :data:`FORMAT_VERSION`.

    Attributes
    ----------
    name
        The model's name.
    created
        When it was trained (ISO 8601, UTC).
    features
        The model matrix's columns, in order.
    classes
        The classes the probabilities are of (cool, neutral, warm).
    class_weights
        The decision rule's weights: the answer is ``argmax(proba * class_weights)``.
    config
        The training configuration as it was dumped (the training layer validates it when
        it trains again from it).
    seed
        The training seed.
    versions
        Versions of the packages that shape the numbers.
    files
        Every other file of the artifact → its sha256.
    note
        Free text about this artifact (for example why it is a variant of another).
    """

    name: str
    created: str
    features: tuple[Feature, ...] = Field(min_length=1)
    classes: tuple[str, str, str]
    class_weights: tuple[float, float, float]
    calibration: Calibration
    baselines: Baselines
    booster: BoosterInfo
    config: dict[str, Any]
    seed: int
    data: TrainingData
    versions: dict[str, str]
    lineage: CodeLineage
    selection: Selection
    metrics: Metrics
    files: dict[str, Sha256] = {}
    #: How the model's answers adapt to a site's earlier votes; ``None`` (models trained before
    #: site adaptation): they answer zero-shot.
    adaptation: AdaptationSettings | None = None
    note: str | None = None
    format_version: Literal[2] = FORMAT_VERSION

    @property
    def version(self) -> str:
        """Short content id of the model (its booster's sha256, 12 characters)."""
        return self.files.get(BOOSTER, "unknown")[:12]

    def to_json(self) -> dict[str, Any]:
        """The manifest as ``manifest.json`` holds it (``note`` only when there is one)."""
        return self.model_dump(mode="json", exclude={"note"} if self.note is None else set())

    @classmethod
    def parse(cls, data: object, source: object) -> Manifest:
        """Validate a manifest read from ``source`` (named in the error).

        Raises
        ------
        ArtifactError
            Naming each field that is missing or of the wrong type.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors()
            )
            raise ArtifactError(
                f"{source} is not a valid format-{FORMAT_VERSION} manifest ({problems}): "
                "retrain the model with `conforto train`."
            ) from None
