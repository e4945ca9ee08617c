"""Occupant-response heads: what occupants will say beside their sensation vote.

Three calibrated LightGBM boosters read the same feature matrix as the sensation model:

- ``dissatisfied``: P(rounded vote in {-3, -2, 2, 3}), a data-driven PPD;
- ``unacceptable``: P(the occupant finds the environment thermally unacceptable);
- ``preference``: P(wants it cooler), P(no change), P(warmer).

They live in the artifact as optional files (``heads.json`` and one booster each): older
artifacts load without them and answer null. This module is the scoring side (NumPy and the
boosters); :mod:`conforto._training.heads` trains and judges them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pathlib import Path

    import lightgbm as lgb

FloatArray = npt.NDArray[np.float64]
HEADS = "heads.json"


@dataclass(frozen=True)
class HeadSpec:
    """One head: its name and its classes (a binary head answers P(its last class))."""

    name: str
    classes: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def booster_file(self) -> str:
        """The head's booster file in the artifact."""
        return f"head_{self.name}.txt"


SPECS: tuple[HeadSpec, ...] = (
    HeadSpec("dissatisfied", ("satisfied", "dissatisfied"), ("p_dissatisfied",)),
    HeadSpec("unacceptable", ("acceptable", "unacceptable"), ("p_unacceptable",)),
    HeadSpec(
        "preference",
        ("cooler", "no_change", "warmer"),
        ("p_prefer_cooler", "p_prefer_no_change", "p_prefer_warmer"),
    ),
)
#: Output columns of every head, in order (batch prediction, the MLflow model).
COLUMNS: tuple[str, ...] = tuple(c for spec in SPECS for c in spec.columns)


def softmax(scores: FloatArray) -> FloatArray:
    """Row-wise softmax of raw class scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


def class_scores(raw: FloatArray) -> FloatArray:
    """Raw scores as one column per class: a binary booster's one score becomes (0, score)."""
    return raw if raw.ndim == 2 else np.column_stack([np.zeros_like(raw), raw])


def calibrated(raw: FloatArray, temperature: float) -> FloatArray:
    """Class probabilities (rows × classes) from raw scores; a binary head's raw score is one
    column, its probabilities two.
    """
    return softmax(class_scores(raw / temperature))


class Logistic(TypedDict):
    """A logistic model on PMV: one coefficient and one intercept per class (one each for a
    binary head).
    """

    coef: list[float]
    intercept: list[float]


class HeadBaselines(TypedDict):
    """A head's baselines, fitted beside it: its answers' base rate (one share per class) and,
    but for ``dissatisfied`` (whose baseline is PPD/100), a logistic model on PMV.
    """

    base_rate: NotRequired[list[float]]
    pmv_logistic: NotRequired[Logistic]


class HeadEntry(TypedDict):
    """One head in ``heads.json``."""

    classes: list[str]
    temperature: float
    booster: str
    baselines: NotRequired[HeadBaselines]


@dataclass
class Heads:
    """The loaded heads: a booster and a temperature each, and the baselines fitted beside them
    (``base_rate``; ``pmv_logistic``: coefficients and intercepts of a logistic model on PMV),
    which evaluating the heads on other data reads.
    """

    boosters: dict[str, lgb.Booster]
    temperatures: dict[str, float]
    baselines: dict[str, HeadBaselines] = field(default_factory=dict)

    def probabilities(self, matrix: FloatArray, threads: int = 1) -> dict[str, FloatArray]:
        """Each head's class probabilities (rows × its classes) for an encoded matrix."""
        out = {}
        for spec in SPECS:
            raw = np.asarray(
                self.boosters[spec.name].predict(matrix, raw_score=True, num_threads=threads),
                dtype=np.float64,
            )
            out[spec.name] = calibrated(raw, self.temperatures[spec.name])
        return out

    def predict(self, matrix: FloatArray, threads: int = 1) -> FloatArray:
        """Probabilities of :data:`COLUMNS` (rows × 5) for an encoded matrix: a binary head
        answers its last class.
        """
        each = self.probabilities(matrix, threads)
        return np.hstack([each[spec.name][:, -len(spec.columns) :] for spec in SPECS])

    @classmethod
    def load(cls, directory: Path) -> Heads:
        """Read ``heads.json`` and the boosters it names from an artifact folder.

        Raises
        ------
        ValueError
            When a head is missing or its booster cannot be read.
        """
        import lightgbm as lgb

        stored: dict[str, HeadEntry] = json.loads((directory / HEADS).read_text())
        boosters, temperatures, baselines = {}, {}, {}
        for spec in SPECS:
            entry = stored[spec.name]
            try:
                boosters[spec.name] = lgb.Booster(model_file=str(directory / spec.booster_file))
            except lgb.basic.LightGBMError as exc:
                raise ValueError(f"{spec.booster_file}: {exc}") from None
            temperatures[spec.name] = float(entry["temperature"])
            baselines[spec.name] = entry.get("baselines", HeadBaselines())
        return cls(boosters, temperatures, baselines)

    def save(self, directory: Path) -> None:
        """Write the boosters and ``heads.json`` into an artifact folder."""
        for spec in SPECS:
            self.boosters[spec.name].save_model(str(directory / spec.booster_file))
        entries = {
            spec.name: HeadEntry(
                classes=list(spec.classes),
                temperature=self.temperatures[spec.name],
                booster=spec.booster_file,
                baselines=self.baselines.get(spec.name, HeadBaselines()),
            )
            for spec in SPECS
        }
        (directory / HEADS).write_text(json.dumps(entries, indent=2) + "\n")
