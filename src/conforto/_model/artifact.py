"""The trained-model artifact: plain files that load without the training environment.

A model directory (artifact format 2) holds::

    manifest.json    format version, ordered features (units, categorical levels), classes,
                     decision weights, calibration, baselines, config, seed, data fingerprint,
                     package versions, lineage, and the sha256 of every file
    booster.txt      the LightGBM booster in its native text format
    conformal.json   the prediction sets' calibration: conformal p-values of scores on a grid
    confidence.json  how often the answers are right given the answered class's probability:
                     what the live performance estimate reads
    golden.json      a few rooms and the probabilities the model gave them: what a smoke test
                     of a deployed service expects
    drift_reference.parquet  a seeded sample of the training inputs, with season and month:
                     the reference of drift checks
    heads.json, head_*.txt  the occupant-response heads (dissatisfied, unacceptable,
                     preference): boosters and temperatures; absent only when the training data
                     had no occupants' answers (those answers are then null)
    metrics.json     cross-validation metrics, baselines and slices
    oof.parquet      out-of-fold predictions of the building-grouped cross-validation
    profile.json     the training data profile
    report.html      the evaluation report with plots
    MODEL_CARD.md    intended use, data, metrics, limits

Format 1 made every file after ``booster.txt`` optional (models trained before each existed
lacked it); loading refuses it, and :func:`upgrade_format` (``conforto model upgrade``) rewrites
a complete format-1 artifact as format 2. Loading needs only numpy, pandas (for tabular input)
and lightgbm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import numpy as np
import numpy.typing as npt

from conforto._fileio import atomic_write_text, file_sha256
from conforto._model.heads import HEADS, Heads, softmax
from conforto._model.inputs import FeatureSpec, Observation
from conforto._model.manifest import BOOSTER, FORMAT_VERSION, Manifest
from conforto._uncertainty.confidence import CONFIDENCE, ConfidenceCalibration
from conforto._uncertainty.sets import CONFORMAL, ConformalSets
from conforto.errors import ArtifactError

if TYPE_CHECKING:  # frames only for batch scoring: the service never imports pandas
    from collections.abc import Callable

    import pandas as pd

#: The format :func:`upgrade_format` rewrites.
PREVIOUS_FORMAT = 1
MANIFEST = "manifest.json"
#: The registry version of a copy of the artifact, kept beside it (``conforto._registry.
#: registration``): never listed in the manifest, whose checksums are the artifact's own.
REGISTRATION = "registered.json"
#: A sample of the training inputs, the reference of drift checks.
DRIFT_REFERENCE = "drift_reference.parquet"
#: A few rooms and the probabilities the model gave them, for smoke tests.
GOLDEN = "golden.json"
#: Files every artifact has (the heads' files too, unless the data had no occupants' answers).
REQUIRED_FILES = (MANIFEST, BOOSTER, CONFORMAL, CONFIDENCE, GOLDEN, DRIFT_REFERENCE)
UPGRADE_HINT = (
    "`conforto model upgrade --all` rewrites the registered versions, "
    "`conforto model upgrade --dir DIR` a model folder"
)

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")


class GoldenCase(TypedDict):
    """One golden room: the inputs as an API request, the class and probabilities the model
    gave it (``golden.json``'s ``cases``).
    """

    inputs: Observation
    predicted_class: str
    probabilities: dict[str, float]


class Golden(TypedDict):
    """``golden.json``."""

    cases: list[GoldenCase]


@dataclass
class ThermalModel:
    """A loaded model: booster, features, calibration and decision rule.

    Attributes
    ----------
    spec
        Ordered features.
    booster
        The LightGBM booster (``num_threads=1`` for prediction).
    temperature
        Temperature of the softmax calibration (1 = none).
    class_weights
        Decision weights: the predicted class is ``argmax(proba * class_weights)``.
    conformal
        The prediction sets' calibration.
    confidence
        How often the answers are right given how sure the model was (the live estimate's).
    heads
        The occupant-response heads; ``None`` when the training data had no occupants' answers.
    manifest
        Everything else, as stored (validated).
    directory
        Where it was loaded from (its other files are read from there).
    """

    spec: FeatureSpec
    booster: Any
    temperature: float
    class_weights: FloatArray
    conformal: ConformalSets
    confidence: ConfidenceCalibration
    heads: Heads | None
    manifest: Manifest
    directory: Path | None = None

    def file(self, name: str) -> Path:
        """The path of one of the artifact's files (``golden.json``, ``oof.parquet``…).

        Raises
        ------
        ArtifactError
            For a model built in memory, not loaded from a folder.
        """
        if self.directory is None:
            raise ArtifactError(f"model {self.version} was not loaded from a folder: no {name}.")
        return self.directory / name

    @property
    def version(self) -> str:
        """Short content id of the model (from its booster's sha256)."""
        return self.manifest.version

    def predict_matrix(self, matrix: FloatArray, threads: int = 1) -> FloatArray:
        """Calibrated class probabilities for an encoded matrix (rows × features).

        One thread by default: for a few rows, LightGBM's OpenMP threads cost more than they
        save (and much more on a busy CPU); batch scoring passes ``threads=0`` (all cores).
        """
        raw = np.asarray(
            self.booster.predict(matrix, raw_score=True, num_threads=threads), dtype=np.float64
        )
        return softmax(raw / self.temperature)

    def predict_proba(self, frame: pd.DataFrame, threads: int = 1) -> FloatArray:
        """Calibrated probabilities (cool, neutral, warm) for canonical data."""
        from conforto._model.inputs import encode

        return self.predict_matrix(encode(frame, self.spec), threads=threads)

    def decide(self, proba: FloatArray) -> npt.NDArray[np.int64]:
        """Class indices under the model's decision rule."""
        return np.asarray((proba * self.class_weights).argmax(axis=1), dtype=np.int64)


def _manifest_text(manifest: dict[str, Any], version: int) -> str:
    """A manifest's file content, of artifact format ``version``."""
    return json.dumps({**manifest, "format_version": version}, indent=2, allow_nan=False) + "\n"


def save_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` with the sha256 of every other file in ``directory``."""
    files = {
        p.name: file_sha256(p)
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name not in (MANIFEST, REGISTRATION)
    }
    content = manifest.model_copy(update={"files": files}).to_json()
    (directory / MANIFEST).write_text(_manifest_text(content, FORMAT_VERSION))


def read_manifest(directory: Path | str) -> Manifest:
    """The validated manifest of a model directory, without loading the model.

    Raises
    ------
    ArtifactError
        When the folder is not a complete model of the current format, or its manifest lacks a
        field or has one of the wrong type (the message names each).
    """
    directory = Path(directory)
    return Manifest.parse(_read_manifest(directory), directory / MANIFEST)


def verify_artifact(directory: Path) -> None:
    """Check a model directory against its manifest without loading it: every file listed is
    there, with its checksum (no LightGBM needed).

    Raises
    ------
    ArtifactError
        When the manifest or a file is missing, or a checksum does not match.
    """
    _verify_files(directory, _read_manifest(directory).get("files", {}))


def load_model(directory: Path | str, *, verify: bool = True) -> ThermalModel:
    """Load a model directory written by ``conforto train``.

    Parameters
    ----------
    directory
        The artifact folder.
    verify
        Check every file's sha256 against the manifest.

    Returns
    -------
    ThermalModel
        Ready to predict; reproduces the training run's probabilities exactly.

    Raises
    ------
    ArtifactError
        When the folder or a required file is missing, a checksum does not match, or the format
        version is not supported; the message names what is wrong.
    """
    import lightgbm as lgb

    directory = Path(directory)
    manifest = read_manifest(directory)
    if verify:
        _verify_files(directory, manifest.files)
    try:
        booster = lgb.Booster(model_file=str(directory / BOOSTER))
    except lgb.basic.LightGBMError as exc:
        raise ArtifactError(f"cannot load {directory / BOOSTER}: {exc}.") from None
    return ThermalModel(
        spec=FeatureSpec(manifest.features),
        booster=booster,
        temperature=manifest.calibration.temperature,
        class_weights=np.asarray(manifest.class_weights, dtype=np.float64),
        conformal=_part(directory / CONFORMAL, lambda p: ConformalSets.from_dict(_json(p))),
        confidence=_part(
            directory / CONFIDENCE, lambda p: ConfidenceCalibration.from_dict(_json(p))
        ),
        heads=_part(directory, Heads.load) if HEADS in manifest.files else None,
        manifest=manifest,
        directory=directory,
    )


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _part(path: Path, parse: Callable[[Path], T]) -> T:
    """One of the artifact's parts, parsed; a clear error when it cannot be."""
    try:
        return parse(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}.") from None


def _read_manifest(directory: Path, formats: tuple[int, ...] = (FORMAT_VERSION,)) -> dict[str, Any]:
    """The manifest of a complete model directory of one of ``formats``."""
    if not directory.is_dir():
        raise ArtifactError(
            f"model directory not found: {directory}. Train one with `conforto train`."
        )
    if not (directory / MANIFEST).is_file():
        raise ArtifactError(f"{directory} is not a model: {MANIFEST} is missing.")
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{directory / MANIFEST} is not valid JSON: {exc}.") from None
    version = manifest.get("format_version")
    if version not in formats:
        fix = UPGRADE_HINT if version == PREVIOUS_FORMAT else "retrain it with `conforto train`"
        raise ArtifactError(
            f"{directory} has artifact format {version!r}; this conforto reads format "
            f"{FORMAT_VERSION}: {fix}."
        )
    missing = [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(
            f"{directory} is not a complete model of format {FORMAT_VERSION}: missing "
            f"{', '.join(missing)}"
            + (
                f" (a format-{PREVIOUS_FORMAT} model trained before them: retrain it)."
                if version == PREVIOUS_FORMAT
                else "."
            )
        )
    return manifest


def format_1_sha256(directory: Path) -> str:
    """The sha256 the artifact's manifest had as format 1, before :func:`upgrade_format`.

    What the registry compares with a version's registered checksum when an upgrade was
    interrupted between rewriting the manifest and recording its new checksum.
    """
    import hashlib

    manifest = _read_manifest(directory, formats=(PREVIOUS_FORMAT, FORMAT_VERSION))
    return hashlib.sha256(_manifest_text(manifest, PREVIOUS_FORMAT).encode()).hexdigest()


def upgrade_format(directory: Path) -> bool:
    """Rewrite a format-1 artifact as format 2, in place.

    Format 2 is format 1 with every file of :data:`REQUIRED_FILES` required: a complete format-1
    artifact (every model trained since those files existed) is upgraded by rewriting its
    manifest (atomically); every other file, and its checksum, stays as it is.

    Parameters
    ----------
    directory
        The artifact folder.

    Returns
    -------
    bool
        False when it already was format 2.

    Raises
    ------
    ArtifactError
        When it is not an artifact of either format, a file does not match its checksum, or it
        lacks a file format 2 requires (it must be retrained).
    """
    manifest = _read_manifest(directory, formats=(PREVIOUS_FORMAT, FORMAT_VERSION))
    _verify_files(directory, manifest.get("files", {}))
    if manifest["format_version"] == FORMAT_VERSION:
        return False
    atomic_write_text(directory / MANIFEST, _manifest_text(manifest, FORMAT_VERSION))
    return True


def _verify_files(directory: Path, files: dict[str, str]) -> None:
    """Every file the manifest lists (``files``: name → sha256) is there, with its checksum."""
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory} is incomplete: {name} is listed but missing.")
        if file_sha256(path) != expected:
            raise ArtifactError(f"{path} is corrupt: its sha256 does not match the manifest.")
