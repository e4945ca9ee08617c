"""Production against its challengers, from the prediction log: the A/B report.

A **shadow** challenger scored the very requests production answered, so the two are compared
row by row: how often they agree, each one's class mix and, on the rows occupants voted on,
each one's realised accuracy and macro-F1 with a *paired* bootstrap interval of the difference
(the same resampled buildings, or sites, or days, for both). A **canary** answered other
clients than production, so its figures are set beside production's over the same window and
the interval of the difference resamples each side on its own. **Site adaptation** is compared
as a shadow is: its adjusted answers against the model's own (zero-shot) on the requests it
adjusted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from conforto._data.target import CLASS_NAMES, sensation_class
from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._monitor.window import log_connection, read_votes
from conforto._predictions.records import OCCUPANT
from conforto._predictions.schema import challenger_events, predictions, shadow
from conforto._reports import figure_uri, new_figure, render
from conforto._scoring.scores import N_CLASSES, cluster_draws, macro_f1_from_confusion

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from matplotlib.figure import Figure

    from conforto._monitor.window import Span

#: Fewest voted rows on each side before accuracy and macro-F1 are reported.
MIN_VOTES = 20
#: The report's figures, in this order.
SCORES = ("accuracy", "macro_f1")
#: Class shares (0 to 1) by class name, for each arm.
ClassMix = dict[str, dict[str, float]]


@dataclass(frozen=True)
class ArmScores:
    """One model's figures on the requests occupants voted on (fractions, 0 to 1)."""

    accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class Difference:
    """Challenger − production, and its 95 % bootstrap interval."""

    value: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class ShadowComparison:
    """Production and one shadow on the same requests (:func:`compare_shadow`); the scores
    and their ``difference`` are ``None`` with fewer than :data:`MIN_VOTES` votes.
    """

    predictions: int
    failed: int
    production_versions: tuple[str, ...]
    agreement: float | None
    class_mix: ClassMix
    votes: int
    production: ArmScores | None = None
    challenger: ArmScores | None = None
    difference: dict[str, Difference] | None = None


@dataclass(frozen=True)
class CanaryComparison:
    """Production's answers and one canary's to other clients (:func:`compare_canary`); the
    scores and their ``difference`` are ``None`` with fewer than :data:`MIN_VOTES` votes on
    either side.
    """

    predictions: dict[str, int]
    class_mix: ClassMix
    votes: dict[str, int]
    production: ArmScores | None = None
    canary: ArmScores | None = None
    difference: dict[str, Difference] | None = None


@dataclass(frozen=True)
class ChallengerEvent:
    """A challenger started, removed, promoted or stopped (and why), as the service logged it."""

    created: str
    model_version: str
    mode: str
    event: str
    reason: str


@dataclass(frozen=True)
class CompareReport:
    """The A/B report of a window (:func:`compare`): every shadow and canary in it, by
    version, and the challengers' events (started, removed, stopped and why).
    """

    source: dict[str, str]
    predictions: int
    shadow: dict[str, ShadowComparison]
    canary: dict[str, CanaryComparison]
    events: tuple[ChallengerEvent, ...]
    #: Site adaptation's answers (``challenger``) against the zero-shot ones (``production``)
    #: on the requests it adjusted; ``None`` when it adjusted none in the window.
    adaptation: ShadowComparison | None = None

    def to_json(self) -> dict[str, Any]:
        """``compare.json``'s content (a comparison without enough votes has no scores)."""
        data = asdict(self)
        entries = [*data["shadow"].values(), *data["canary"].values()]
        for entry in [*entries, data["adaptation"]] if data["adaptation"] else entries:
            for key in [k for k, v in entry.items() if v is None and k != "agreement"]:
                del entry[key]
        return data


@dataclass(frozen=True)
class ShadowRecord:
    """What the log holds of a challenger's shadow period (:func:`shadow_record`)."""

    shadowed: int
    failed: int
    stops: tuple[str, ...]


def read_ab(url: str, span: Span) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's predictions with their shadow's answer (if any) and latest vote, and the
    challengers' events.

    Returns
    -------
    tuple
        ``(rows, events)``: one row per prediction (``arm``: ``production`` or ``canary``;
        ``zero_shot_class`` where site adaptation adjusted it; ``shadow_version``,
        ``shadow_class``, ``shadow_error`` where a shadow scored it;
        ``vote``: the voted class index, NaN without one) and the events of the window.

    Raises
    ------
    LogUnavailable
        When the database cannot be read.
    """
    within = sa.and_(predictions.c.created >= span.start, predictions.c.created < span.end)
    query = (
        sa.select(
            predictions.c.prediction_id,
            predictions.c.created,
            predictions.c.model_version,
            predictions.c.predicted_class,
            predictions.c.site,
            predictions.c.arm,
            predictions.c.zero_shot_class,
            shadow.c.model_version.label("shadow_version"),
            shadow.c.predicted_class.label("shadow_class"),
            shadow.c.error.label("shadow_error"),
        )
        .select_from(
            predictions.outerjoin(shadow, shadow.c.prediction_id == predictions.c.prediction_id)
        )
        .where(within)
    )
    events = sa.select(challenger_events).where(
        challenger_events.c.created >= span.start, challenger_events.c.created < span.end
    )
    with log_connection(url) as conn:
        rows = _table(conn.execute(query))
        found = _table(conn.execute(events))
    rows["arm"] = rows["arm"].fillna("production")
    votes = read_votes(url, rows["prediction_id"].tolist()).set_index("prediction_id")
    rows["vote"] = sensation_class(rows["prediction_id"].map(votes["thermal_sensation"]))
    return rows, found


def _utc(value: Any) -> pd.Timestamp:
    """SQLite hands back naive times (stored in UTC), PostgreSQL aware ones."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _table(result: sa.CursorResult[Any]) -> pd.DataFrame:
    return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))


def _codes(classes: pd.Series) -> npt.NDArray[np.int64]:
    codes = classes.map({name: i for i, name in enumerate(CLASS_NAMES)})
    return np.asarray(codes, dtype=np.int64)


def _groups(rows: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Clusters of the bootstrap: the site where named, else the day."""
    created = pd.to_datetime(rows["created"], utc=True)
    day = "day " + created.dt.strftime("%Y-%m-%d")
    named = rows["site"].where(rows["site"].notna(), day).astype(str)
    return pd.factorize(named)[0].astype(np.int64)


def _replicates(
    y: npt.NDArray[np.int64],
    pred: npt.NDArray[np.int64],
    inverse: npt.NDArray[np.int64],
    draws: npt.NDArray[np.float64],
) -> dict[str, npt.NDArray[np.float64]]:
    """Accuracy and macro-F1 of each bootstrap replicate (``draws`` from :func:`cluster_draws`)."""
    cells = np.zeros((draws.shape[1], N_CLASSES * N_CLASSES))
    np.add.at(cells, (inverse, y * N_CLASSES + pred), 1.0)
    confusions = (draws @ cells).reshape(-1, N_CLASSES, N_CLASSES)
    total = confusions.sum(axis=(1, 2))
    correct = np.trace(confusions, axis1=1, axis2=2)
    accuracy = np.divide(correct, total, out=np.full(len(total), np.nan), where=total > 0)
    return {"accuracy": accuracy, "macro_f1": macro_f1_from_confusion(confusions)}


def _scores(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> ArmScores:
    confusion = np.bincount(y * N_CLASSES + pred, minlength=N_CLASSES**2).reshape(3, 3)
    return ArmScores(float((y == pred).mean()), float(macro_f1_from_confusion(confusion)))


def _difference(
    after: ArmScores,
    before: ArmScores,
    replicates: tuple[dict[str, npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]],
) -> dict[str, Difference]:
    """``after`` − ``before`` for each score, with the interval of the replicates' differences."""
    drawn_after, drawn_before = replicates
    found = {}
    for name in SCORES:
        low, high = np.nanquantile(drawn_after[name] - drawn_before[name], [0.025, 0.975])
        found[name] = Difference(
            getattr(after, name) - getattr(before, name), (float(low), float(high))
        )
    return found


def _mix(classes: pd.Series) -> dict[str, float]:
    shares = classes.value_counts(normalize=True)
    return {name: float(shares.get(name, 0.0)) for name in CLASS_NAMES}


def compare_shadow(rows: pd.DataFrame, reps: int = 1000, seed: int = 0) -> ShadowComparison:
    """Production and one shadow on the same requests (``rows``: one challenger's): how often
    they agree, the class mix of each and, with at least :data:`MIN_VOTES` votes, each one's
    accuracy and macro-F1 and the difference (challenger − production) with its paired 95 %
    bootstrap interval.
    """
    scored = rows[rows["shadow_class"].notna()]
    voted = scored[scored["vote"].notna()]
    counts = ShadowComparison(
        predictions=len(rows),
        failed=int(rows["shadow_error"].notna().sum()),
        production_versions=tuple(sorted(scored["model_version"].unique().tolist())),
        agreement=float((scored["shadow_class"] == scored["predicted_class"]).mean())
        if len(scored)
        else None,
        class_mix={
            "production": _mix(scored["predicted_class"]),
            "challenger": _mix(scored["shadow_class"]),
        },
        votes=len(voted),
    )
    if len(voted) < MIN_VOTES:
        return counts
    y = voted["vote"].to_numpy(np.int64)
    champion, challenger = _codes(voted["predicted_class"]), _codes(voted["shadow_class"])
    inverse, draws = cluster_draws(_groups(voted), reps, seed)
    before = _replicates(y, champion, inverse, draws)
    after = _replicates(y, challenger, inverse, draws)
    production, shadowed = _scores(y, champion), _scores(y, challenger)
    return replace(
        counts,
        production=production,
        challenger=shadowed,
        difference=_difference(shadowed, production, (after, before)),
    )


def compare_adaptation(rows: pd.DataFrame, reps: int = 1000, seed: int = 0) -> ShadowComparison:
    """Site adaptation's answers against the model's zero-shot ones on the same requests
    (``rows``: those it adjusted), compared as a shadow is: ``production`` is the zero-shot
    answer, ``challenger`` the adapted one.
    """
    paired = rows.assign(
        predicted_class=rows["zero_shot_class"], shadow_class=rows["predicted_class"]
    )
    return compare_shadow(paired.assign(shadow_error=None), reps, seed)


def compare_canary(rows: pd.DataFrame, reps: int = 1000, seed: int = 0) -> CanaryComparison:
    """Production's answers and one canary's, to other clients in the same window: the counts
    and class mix of each arm and, with at least :data:`MIN_VOTES` votes on each side, their
    accuracy and macro-F1 and the difference (canary − production) with a 95 % bootstrap
    interval resampling each arm on its own.
    """
    arms = {
        "production": rows[rows["arm"] == "production"],
        "canary": rows[rows["arm"] == "canary"],
    }
    voted = {arm: frame[frame["vote"].notna()] for arm, frame in arms.items()}
    counts = CanaryComparison(
        predictions={arm: len(frame) for arm, frame in arms.items()},
        class_mix={arm: _mix(frame["predicted_class"]) for arm, frame in arms.items()},
        votes={arm: len(frame) for arm, frame in voted.items()},
    )
    if min(counts.votes.values()) < MIN_VOTES:
        return counts
    scores, replicates = {}, {}
    for k, (arm, frame) in enumerate(voted.items()):
        y, pred = frame["vote"].to_numpy(np.int64), _codes(frame["predicted_class"])
        scores[arm] = _scores(y, pred)
        inverse, draws = cluster_draws(_groups(frame), reps, seed + k)
        replicates[arm] = _replicates(y, pred, inverse, draws)
    return replace(
        counts,
        production=scores["production"],
        canary=scores["canary"],
        difference=_difference(
            scores["canary"],
            scores["production"],
            (replicates["canary"], replicates["production"]),
        ),
    )


def compare(url: str, span: Span, *, reps: int = 1000, seed: int = 0) -> CompareReport:
    """The A/B report of a window of the prediction log: every shadow and canary in it.

    Parameters
    ----------
    url
        The prediction log's database.
    span
        The window.
    reps
        Bootstrap replicates.
    seed
        Seed of the bootstrap.
    """
    rows, events = read_ab(url, span)
    canaries = rows.loc[rows["arm"] == "canary", "model_version"].unique().tolist()
    adapted = rows[rows["zero_shot_class"].notna()]
    return CompareReport(
        source={
            "from": span.start.isoformat(timespec="seconds"),
            "until": span.end.isoformat(timespec="seconds"),
        },
        predictions=len(rows),
        shadow={
            str(version): compare_shadow(group, reps, seed)
            for version, group in rows[rows["shadow_version"].notna()].groupby("shadow_version")
        },
        canary={str(version): compare_canary(rows, reps, seed) for version in sorted(canaries)},
        events=tuple(
            ChallengerEvent(
                _utc(row.created).isoformat(timespec="seconds"),
                str(row.model_version),
                str(row.mode),
                str(row.event),
                str(row.reason),
            )
            for row in events.itertuples(index=False)
        ),
        adaptation=compare_adaptation(adapted, reps, seed) if len(adapted) else None,
    )


def _figure(report: CompareReport) -> Figure:
    """Each challenger's class mix beside production's, and the differences with intervals."""
    entries: list[tuple[str, str, ShadowComparison | CanaryComparison]] = [
        ("shadow", v, e) for v, e in report.shadow.items()
    ]
    entries += [("canary", v, e) for v, e in report.canary.items()]
    fig = new_figure(8.0, 2.4 * max(1, len(entries)))
    axes = fig.subplots(max(1, len(entries)), 2, squeeze=False)
    for (mode, version, entry), (mix, diff) in zip(entries, axes, strict=False):
        x = np.arange(len(CLASS_NAMES))
        for k, (arm, shares) in enumerate(entry.class_mix.items()):
            mix.bar(x + (k - 0.5) * 0.4, [shares[c] for c in CLASS_NAMES], 0.4, label=arm)
        mix.set_xticks(x, CLASS_NAMES)
        mix.set_ylabel("share of answers")
        mix.set_title(f"{mode} {version}: class mix", fontsize=9)
        mix.legend(fontsize=7)
        difference = entry.difference
        diff.axvline(0.0, color="grey", lw=0.8)
        if difference:
            for i, name in enumerate(SCORES):
                found = difference[name]
                low, high = found.ci
                diff.errorbar(
                    found.value,
                    i,
                    xerr=[[found.value - low], [high - found.value]],
                    fmt="o",
                    capsize=4,
                )
            diff.set_yticks(range(len(SCORES)), ["accuracy", "macro-F1"])
        diff.set_xlabel("challenger − production (95 % interval)")
        diff.set_title("on the voted requests" if difference else "too few votes yet", fontsize=9)
    for unused in axes[len(entries) :]:
        for ax in unused:
            ax.set_axis_off()
    return fig


def write_compare(report: CompareReport, out: Path) -> dict[str, Path]:
    """Write ``compare.json`` and ``compare.html`` (with its figure) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"compare.json": out / "compare.json", "compare.html": out / "compare.html"}
    data = report.to_json()
    atomic_write_json(paths["compare.json"], data)
    figure = figure_uri(_figure(report)) if report.shadow or report.canary else None
    atomic_write_text(paths["compare.html"], render("compare.html", data=data, figure=figure))
    return paths


def shadow_record(url: str, names: Sequence[str]) -> ShadowRecord:
    """What the log holds of a challenger's shadow period, under any of its ``names`` (its
    registry version, its content id): occupants' requests only (not smoke tests' or the
    explorer's).

    Returns
    -------
    ShadowRecord
        Predictions it scored, those that failed, and the reasons of its automatic stops.

    Raises
    ------
    LogUnavailable
        When the database cannot be read.
    """
    names = list(names)
    counted = (
        sa.select(
            sa.func.count().filter(shadow.c.error.is_(None)),
            sa.func.count().filter(shadow.c.error.is_not(None)),
        )
        .select_from(
            shadow.join(predictions, shadow.c.prediction_id == predictions.c.prediction_id)
        )
        .where(shadow.c.model_version.in_(names), predictions.c.kind == OCCUPANT)
    )
    stops = sa.select(challenger_events.c.reason).where(
        challenger_events.c.model_version.in_(names), challenger_events.c.event == "stopped"
    )
    with log_connection(url) as conn:
        shadowed, failed = conn.execute(counted).one()
        reasons = list(conn.execute(stops).scalars())
    return ShadowRecord(int(shadowed), int(failed), tuple(reasons))
