"""The trained-model artifact: plain files that load without the training environment.

A model directory holds::

    manifest.json    format version, ordered features (units, categorical levels), classes,
                     decision weights, calibration, baselines, config, seed, data fingerprint,
                     package versions, lineage, and the sha256 of every file
    booster.txt      the LightGBM booster in its native text format
    metrics.json     cross-validation metrics, baselines and slices
    oof.parquet      out-of-fold predictions of the building-grouped cross-validation
    profile.json     the training data profile
    drift_reference.parquet  a seeded sample of the training inputs, with season and month:
                     the reference of drift checks (optional: older models lack it)
    golden.json      a few rooms and the probabilities the model gave them: what a smoke test
                     of a deployed service expects (optional)
    conformal.json   the prediction sets' calibration: conformal p-values of scores on a grid
                     (optional: without it predictions have no set)
    heads.json, head_*.txt  the occupant-response heads (dissatisfied, unacceptable,
                     preference): boosters and temperatures (optional: without them those
                     answers are null)
    confidence.json  how often the answers are right given the answered class's probability:
                     what the live performance estimate reads (optional: without it, the
                     probabilities as they are)
    report.html      the evaluation report with plots
    MODEL_CARD.md    intended use, data, metrics, limits

Loading needs only numpy, pandas (for tabular input) and lightgbm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from conforto.errors import ArtifactError
from conforto.fileio import file_sha256
from conforto.model.heads import HEADS, Heads, softmax
from conforto.model.inputs import FeatureSpec
from conforto.uncertainty.sets import CONFORMAL, ConformalSets

if TYPE_CHECKING:  # frames only for batch scoring: the service never imports pandas
    import pandas as pd

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BOOSTER = "booster.txt"
#: Optional: a sample of the training inputs, the reference of drift checks.
DRIFT_REFERENCE = "drift_reference.parquet"
#: Optional: a few rooms and the probabilities the model gave them, for smoke tests.
GOLDEN = "golden.json"
#: Files every artifact must have for prediction.
REQUIRED_FILES = (MANIFEST, BOOSTER)

FloatArray = npt.NDArray[np.float64]


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
    manifest
        Everything else, as stored.
    directory
        Where it was loaded from (its optional files are read from there).
    conformal
        The prediction sets' calibration; ``None`` for models trained without one.
    heads
        The occupant-response heads; ``None`` for models trained without them.
    """

    spec: FeatureSpec
    booster: Any
    temperature: float
    class_weights: FloatArray
    manifest: dict[str, Any]
    directory: Path | None = None
    conformal: ConformalSets | None = None
    heads: Heads | None = None

    def optional_file(self, name: str) -> Path | None:
        """One of the artifact's optional files, when this model has it (older ones may not)."""
        if self.directory is None or name not in self.manifest.get("files", {}):
            return None
        return self.directory / name

    @property
    def version(self) -> str:
        """Short content id of the model (from its booster's sha256)."""
        return str(self.manifest.get("files", {}).get(BOOSTER, "unknown"))[:12]

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
        from conforto.model.inputs import encode

        return self.predict_matrix(encode(frame, self.spec), threads=threads)

    def decide(self, proba: FloatArray) -> npt.NDArray[np.int64]:
        """Class indices under the model's decision rule."""
        return np.asarray((proba * self.class_weights).argmax(axis=1), dtype=np.int64)


def save_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` with the sha256 of every other file in ``directory``."""
    manifest = dict(manifest)
    manifest["format_version"] = FORMAT_VERSION
    manifest["files"] = {
        p.name: file_sha256(p)
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")


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
    manifest = _read_manifest(directory)
    if verify:
        _verify_files(directory, manifest)
    try:
        booster = lgb.Booster(model_file=str(directory / BOOSTER))
    except lgb.basic.LightGBMError as exc:
        raise ArtifactError(f"cannot load {directory / BOOSTER}: {exc}.") from None
    model = ThermalModel(
        spec=FeatureSpec.from_dict(manifest["features"]),
        booster=booster,
        temperature=float(manifest["calibration"]["temperature"]),
        class_weights=np.asarray(manifest["class_weights"], dtype=np.float64),
        manifest=manifest,
        directory=directory,
    )
    calibration = model.optional_file(CONFORMAL)
    if calibration is not None:
        try:
            model.conformal = ConformalSets.from_dict(json.loads(calibration.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"cannot read {calibration}: {exc}.") from None
    heads = model.optional_file(HEADS)
    if heads is not None:
        try:
            model.heads = Heads.load(directory)
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"cannot read {heads}: {exc}.") from None
    return model


def _read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a complete model directory of this format."""
    if not directory.is_dir():
        raise ArtifactError(
            f"model directory not found: {directory}. Train one with `conforto train`."
        )
    missing = [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    if missing:
        raise ArtifactError(f"{directory} is not a complete model: missing {', '.join(missing)}.")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{directory / MANIFEST} is not valid JSON: {exc}.") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{directory} has artifact format {version!r}; this conforto reads format "
            f"{FORMAT_VERSION}. Retrain the model with this version."
        )
    found: dict[str, Any] = manifest
    return found


def _verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is there, with its checksum."""
    for name, expected in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory} is incomplete: {name} is listed but missing.")
        if file_sha256(path) != expected:
            raise ArtifactError(f"{path} is corrupt: its sha256 does not match the manifest.")
