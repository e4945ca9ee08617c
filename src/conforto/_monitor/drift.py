"""Input drift: whether what the model is asked about moved away from what it learnt from.

Per model input, the population stability index (PSI, the symmetric Kullback-Leibler divergence
of two distributions' shares, as credit scoring has long used it): over the reference's deciles
for numbers, over the levels for categories (levels rarer than 1 % of the reference folded into
one). An input drifts when its PSI passes its threshold (0.1 by default: "a moderate shift" by
the usual reading), and is judged only with enough values on both sides. The data set drifts
when the share of drifted inputs, among those judged, reaches ``drift_share``.

PSI was chosen over normed Wasserstein and Jensen-Shannon distances on 1,000-row windows of the
training data itself (bench/drift.py): chance alone gave them up to 0.17 and 0.11, at or above
their usual thresholds of 0.1, against a largest PSI of 0.06, while a +1.5 °C shift of the air
temperature gives a PSI near 0.3. A distance, unlike a p-value, does not turn every small
difference of a large window into an alarm.

Thermal inputs move with the seasons: compared ``season_matched``, the reference is reweighted
to the window's mix of seasons (or months), so that a summer is compared with earlier summers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._model.artifact import DRIFT_REFERENCE, ThermalModel
from conforto._monitor.sample import FloatArray, Sample, season_weights
from conforto._monitor.thresholds import MonitorConfig
from conforto._monitor.window import LogSource, quiet_reason
from conforto._notify import Message, context, header, section
from conforto._reports import figure_uri, new_figure, render
from conforto.errors import DataError, QuietWindow

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conforto._monitor.window import Described, Source


@dataclass(frozen=True)
class FeatureDrift:
    """One input's verdict."""

    name: str
    kind: str
    method: str
    statistic: float | None
    threshold: float
    drifted: bool
    enough_data: bool
    reference_rows: float
    current_rows: float


@dataclass
class DriftReport:
    """Every input's verdict and the data set's, with where both samples came from."""

    model_version: str
    reference: Described
    current: Described
    features: list[FeatureDrift] = field(default_factory=list)
    drift_share: float = 0.5

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted inputs, largest distance over threshold first."""
        found = [f for f in self.features if f.drifted]
        found.sort(key=lambda f: -(f.statistic or 0.0) / f.threshold)
        return [f.name for f in found]

    @property
    def share(self) -> float:
        """Share of drifted inputs among those with enough data (0 when none has)."""
        judged = [f for f in self.features if f.enough_data]
        return sum(f.drifted for f in judged) / len(judged) if judged else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted inputs reaches ``drift_share``."""
        return any(f.enough_data for f in self.features) and self.share >= self.drift_share

    def to_json(self) -> dict[str, Any]:
        """``drift.json``'s content."""
        return {
            "model_version": self.model_version,
            "reference": self.reference,
            "current": self.current,
            "features": [
                {k: v for k, v in asdict(f).items() if not k.endswith("_rows")}
                | {"reference_rows": f.reference_rows, "current_rows": f.current_rows}
                for f in self.features
            ],
            "drifted_features": self.drifted_features,
            "drift_share": self.share,
            "dataset_drift": self.dataset_drift,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], drift_share: float) -> DriftReport:
        """A report read back from :meth:`to_json`'s content (``drift_share``: the threshold
        of the dataset's verdict, which the file holds as the share it found).
        """
        return cls(
            model_version=str(data["model_version"]),
            reference=data["reference"],
            current=data["current"],
            features=[FeatureDrift(**f) for f in data["features"]],
            drift_share=drift_share,
        )


#: Floor of a bin's share, so that an empty bin gives a large but finite PSI (Evidently's).
EMPTY_SHARE = 1e-4
#: Reference levels rarer than this share are folded into one, so that sampling noise over
#: many small levels (30 climates, 40 countries) does not look like drift.
RARE_LEVEL = 0.01
#: Bins of a numeric input: the reference's deciles.
BINS = 10


def psi(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Population stability index of two histograms over the same bins (counts or weights).

    Examples
    --------
    >>> round(psi(np.array([50.0, 50.0]), np.array([50.0, 50.0])), 6)
    0.0
    >>> round(psi(np.array([50.0, 50.0]), np.array([80.0, 20.0])), 3)
    0.416
    """
    before, after = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    p = np.maximum(before / before.sum(), EMPTY_SHARE)
    q = np.maximum(after / after.sum(), EMPTY_SHARE)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((p - q) * np.log(p / q)))  # KL(p, q) + KL(q, p)


def _verdict(
    name: str,
    kind: str,
    statistic: float | None,
    threshold: float,
    n: tuple[float, float],
    config: MonitorConfig,
) -> FeatureDrift:
    enough = min(n) >= config.min_rows
    drifted = bool(enough and statistic is not None and statistic > threshold)
    return FeatureDrift(name, kind, "psi", statistic, threshold, drifted, enough, *n)


def numeric_drift(
    name: str, reference: Sample, current: Sample, config: MonitorConfig
) -> FeatureDrift:
    """PSI of one numeric input over the reference's deciles."""
    nothing: tuple[FloatArray, FloatArray] = (np.empty(0), np.empty(0))
    (ref, ref_w), (cur, cur_w) = (
        reference.numeric.get(name, nothing),
        current.numeric.get(name, nothing),
    )
    statistic = None
    if ref.size and cur.size:
        cdf = np.cumsum(ref_w) / ref_w.sum()
        quantiles = np.linspace(0, 1, BINS + 1)[1:-1]
        edges = np.unique(ref[np.minimum(np.searchsorted(cdf, quantiles), ref.size - 1)])
        bins = edges.size + 1
        before = np.bincount(np.searchsorted(edges, ref, side="right"), ref_w, minlength=bins)
        after = np.bincount(np.searchsorted(edges, cur, side="right"), cur_w, minlength=bins)
        statistic = psi(before, after)
    n = (reference.effective_rows(name), current.effective_rows(name))
    return _verdict(name, "numeric", statistic, config.numeric_threshold, n, config)


def categorical_drift(
    name: str, reference: Sample, current: Sample, config: MonitorConfig
) -> FeatureDrift:
    """PSI of one categorical input over its levels (the reference's rare ones folded)."""
    ref, cur = reference.categorical.get(name, {}), current.categorical.get(name, {})
    total = sum(ref.values())
    kept = {level for level, weight in ref.items() if total and weight / total >= RARE_LEVEL}

    def folded(counts: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for level, weight in counts.items():
            key = level if level in kept else "(rare)"
            out[key] = out.get(key, 0.0) + weight
        return out

    before, after = folded(ref), folded(cur)
    levels = sorted(set(before) | set(after))
    p = np.array([before.get(level, 0.0) for level in levels])
    q = np.array([after.get(level, 0.0) for level in levels])
    statistic = psi(p, q) if p.sum() and q.sum() else None
    n = (reference.effective_rows(name), current.effective_rows(name))
    return _verdict(name, "categorical", statistic, config.categorical_threshold, n, config)


def compare(
    reference: Sample,
    current: Sample,
    numeric: list[str],
    categorical: list[str],
    config: MonitorConfig,
    *,
    model_version: str,
    described: tuple[Described, Described],
) -> DriftReport:
    """Judge every input of ``current`` against ``reference``.

    Parameters
    ----------
    reference, current
        The two samples.
    numeric, categorical
        The model's inputs of each kind.
    config
        Thresholds.
    model_version
        The model whose inputs these are.
    described
        What the reference and the current window are (``drift.json``'s ``reference`` and
        ``current``); their row counts are added here.

    Returns
    -------
    DriftReport
        Inputs in the model's order.
    """
    features = [numeric_drift(n, reference, current, config) for n in numeric] + [
        categorical_drift(n, reference, current, config) for n in categorical
    ]
    return DriftReport(
        model_version,
        {**described[0], "rows": reference.rows},
        {**described[1], "rows": current.rows},
        features,
        config.drift_share,
    )


def model_inputs(model: ThermalModel) -> tuple[list[str], list[str]]:
    """The model's numeric and categorical inputs (its derived physics features aside)."""
    kinds = {f.name: f.kind for f in model.spec.features}
    return (
        [n for n, k in kinds.items() if k == "numeric"],
        [n for n, k in kinds.items() if k == "categorical"],
    )


def training_reference(model: ThermalModel) -> pd.DataFrame:
    """The model's sample of its training inputs (its ``drift_reference.parquet``)."""
    return pd.read_parquet(model.file(DRIFT_REFERENCE))


def check_drift(
    model: ThermalModel,
    current: Source,
    *,
    baseline: Source | None = None,
    season_matched: bool = False,
    config: MonitorConfig | None = None,
    model_version: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[DriftReport, Sample, Sample]:
    """Compare a window's inputs with the model's training data (or an earlier window).

    Parameters
    ----------
    model
        The model whose inputs are judged; its drift reference is the default baseline.
    current
        The window judged.
    baseline
        Another window to compare with instead (an earlier span of the same log).
    season_matched
        Reweight the baseline to the window's mix of seasons (or months).
    config
        Thresholds (default :class:`MonitorConfig`).
    model_version
        The version to report (default: the model's own content id).
    on_chunk
        Called with the rows of each chunk read (progress display).

    Returns
    -------
    tuple
        The report, and the baseline and current samples (for the figures).

    Raises
    ------
    QuietWindow
        When the prediction log has no prediction in the window.
    DataError
        When another source has no rows.
    """
    config = config or MonitorConfig()
    numeric, categorical = model_inputs(model)
    now = Sample()
    for frame in current.frames(on_chunk):
        now.add(frame, numeric, categorical)
    if not now.rows:
        if isinstance(current, LogSource):
            raise QuietWindow(quiet_reason(current))
        raise DataError(f"nothing to judge: no rows in {current.describe()['source']}.")
    if baseline is None:
        frame = training_reference(model)
        weights, matched = season_weights(frame, now) if season_matched else (None, None)
        before = Sample().add(frame, numeric, categorical, weights)
        described: Described = {
            "source": "training",
            "from": None,
            "until": None,
            "season_matched": matched,
        }
    else:
        frames = list(baseline.frames(on_chunk))
        whole = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        weights, matched = season_weights(whole, now) if season_matched else (None, None)
        before = Sample().add(whole, numeric, categorical, weights)
        described = {**baseline.describe(), "season_matched": matched}
    report = compare(
        before,
        now,
        numeric,
        categorical,
        config,
        model_version=model_version or model.version,
        described=(described, current.describe()),
    )
    return report, before, now


def _panel(ax: Any, feature: FeatureDrift, before: Sample, now: Sample) -> None:
    colours = ("#4c72b0", "#dd8452")
    if feature.kind == "numeric":
        sides = [s.numeric.get(feature.name, (np.empty(0), np.empty(0))) for s in (before, now)]
        values = np.concatenate([v for v, _ in sides])
        if values.size:
            edges = np.histogram_bin_edges(values, bins=30)
            for (v, w), colour, label in zip(sides, colours, ("reference", "current"), strict=True):
                if w.sum() > 0:  # a side without values (or weight) has no density to draw
                    ax.hist(
                        v,
                        bins=edges,
                        weights=w,
                        density=True,
                        alpha=0.55,
                        color=colour,
                        label=label,
                    )
    else:
        counts: list[dict[str, float]] = [
            s.categorical.get(feature.name, {}) for s in (before, now)
        ]
        levels = sorted(set(counts[0]) | set(counts[1]), key=lambda k: -counts[0].get(k, 0.0))[:12]
        pos = np.arange(len(levels))
        for k, (c, colour) in enumerate(zip(counts, colours, strict=True)):
            total = sum(c.values()) or 1.0
            ax.barh(pos + 0.4 * k, [c.get(v, 0.0) / total for v in levels], 0.4, color=colour)
        ax.set_yticks(pos + 0.2, [str(v)[:18] for v in levels], fontsize=6)
        ax.invert_yaxis()
    verdict = (
        "DRIFT" if feature.drifted else ("too few values" if not feature.enough_data else "ok")
    )
    stat = "–" if feature.statistic is None else f"{feature.statistic:.3f}"
    ax.set_title(
        f"{feature.name}: {stat} ({verdict})",
        fontsize=8,
        color="#c44e52" if feature.drifted else "black",
    )
    ax.tick_params(labelsize=6)


def drift_figure(report: DriftReport, before: Sample, now: Sample, ncols: int = 4) -> str:
    """Reference vs current, one panel per input, drifted ones first; a PNG data URI."""
    order = sorted(report.features, key=lambda f: (not f.drifted, not f.enough_data))
    nrows = max(1, -(-len(order) // ncols))
    fig = new_figure(3.2 * ncols, 2.2 * nrows, layout=None)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.04, top=0.95, wspace=0.45, hspace=0.7)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, feature in zip(axes, order, strict=False):
        _panel(ax, feature, before, now)
    for ax in axes[len(order) :]:
        ax.set_axis_off()
    if order:
        axes[0].legend(["reference", "current"], fontsize=6)
    return figure_uri(fig, dpi=72)


def write_drift(report: DriftReport, before: Sample, now: Sample, out: Path) -> dict[str, Path]:
    """Write ``drift.json`` and ``drift.html`` (table and panels) into ``out``."""
    html = render(
        "drift.html", report=report, data=report.to_json(), figure=drift_figure(report, before, now)
    )
    return {
        "drift.json": atomic_write_json(out / "drift.json", report.to_json()),
        "drift.html": atomic_write_text(out / "drift.html", html),
    }


def drift_message(report: DriftReport) -> Message:
    """The inputs have drifted: which, by how much, against what."""
    now, before = report.current, report.reference
    worst = [f for f in report.features if f.drifted]
    worst.sort(key=lambda f: -(f.statistic or 0.0))
    lines = [f"• *{f.name}*: PSI {f.statistic:.3f} (threshold {f.threshold:.2f})" for f in worst]
    verdict = "the inputs have drifted" if report.dataset_drift else "some inputs drifted"
    blocks = [
        header(f"Input drift, model {report.model_version}: {verdict}"),
        section("\n".join(lines) or "no input drifted"),
        context(
            f"{now['rows']:,} rows of {now['source']} vs "
            f"{before['rows']:,} of {before['source']}; share "
            f"{report.share:.2f} (threshold {report.drift_share:.2f})"
        ),
    ]
    text = f":warning: conforto input drift, model {report.model_version}: " + ", ".join(
        report.drifted_features
    )
    return Message("drift", text, blocks)
