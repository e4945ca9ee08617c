"""How results look in a terminal: rich tables of validation, metrics, gate and registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from conforto._cli.common import console

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conforto._data.validation import ValidationReport
    from conforto._lifecycle.gate import GateReport
    from conforto._monitor.compare import CompareReport
    from conforto._monitor.drift import DriftReport
    from conforto._monitor.performance import PerformanceReport
    from conforto._predictions.adaptations import StateChange
    from conforto._registry.audit import Move
    from conforto._scoring.scores import Scores
    from conforto._tracking.model_version import ModelVersion
    from conforto._training.summary import Evaluation
    from conforto._uncertainty.estimate import EstimateReport


def validation(report: ValidationReport, paths: dict[str, Path]) -> None:
    """The checks that did not pass, the summary line and the reports written."""
    table = Table(title="Checks that did not pass", show_lines=False)
    for col in ("status", "check", "rule", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for check in report.failed + report.warnings:
        colour = "red" if check.status == "fail" else "yellow"
        table.add_row(f"[{colour}]{check.status}[/]", check.name, check.rule, str(check.rows))
    if table.row_count:
        console.print(table)
    console.print(report.summary(), highlight=False)
    for name, path in paths.items():
        console.print(f"  {name}: {path}", highlight=False)


def summary_table(summary: Evaluation, title: str) -> Table:
    """Model vs PMV vs majority on the same rows (PMV binned has no probabilities: "-")."""
    table = Table(title=title)
    for col in ("", "rows", "accuracy", "macro-F1", "log loss", "Brier", "ECE"):
        table.add_column(col, justify="left" if not col else "right")

    def add(name: str, m: Scores, probabilistic: bool = True) -> None:
        cells = [
            f"{m[k]:.3f}" if probabilistic or k in ("accuracy", "macro_f1") else "-"
            for k in ("accuracy", "macro_f1", "log_loss", "brier", "ece")
        ]
        table.add_row(name, f"{int(m['rows'])}", *cells)

    add("model", summary["model"])
    add("majority class", summary["majority"])
    add("model, rows with PMV", summary["pmv_rows"]["model"])
    add("PMV binned, rows with PMV", summary["pmv_rows"]["pmv"], probabilistic=False)
    add("probabilistic PMV", summary["pmv_rows"]["probabilistic_pmv"])
    return table


def estimate_line(estimate: EstimateReport | None) -> None:
    """What the live monitor would estimate without votes, against the realised accuracy."""
    if not estimate:
        return
    console.print(
        f"accuracy estimated without votes (what `monitor performance` reads): "
        f"{estimate['recalibrated']['accuracy']:.3f}, "
        f"realised {estimate['realised']['accuracy']:.3f}",
        highlight=False,
    )


def trained_model(target: Path) -> None:
    """A trained model's cross-validation table, the literature's split and where it lives."""
    metrics = json.loads((target / "metrics.json").read_text())
    console.print(summary_table(metrics["cv"], "Cross-validation, grouped by building"))
    coverage = metrics["cv"].get("coverage")
    if coverage:
        levels = " / ".join(f"{level:g}" for level in coverage["levels"])
        overall = coverage["overall"]
        console.print(
            f"prediction sets (by {coverage['by']}, cross-conformal) at {levels}: coverage "
            + " / ".join(f"{c:.3f}" for c in overall["coverage"])
            + ", mean size "
            + " / ".join(f"{s:.2f}" for s in overall["mean_size"])
            + " classes",
            highlight=False,
        )
    estimate_line(metrics["cv"].get("estimate"))
    for name, split in metrics["random_split"].items():
        console.print(
            f"random 80/20 split, {name.replace('_', ' ')} (literature protocol, optimistic): "
            f"accuracy {split['accuracy']:.3f}",
            highlight=False,
        )
    console.print(f"model: {target}\nreport: {target / 'report.html'}", highlight=False)


def gate(report: GateReport, paths: dict[str, Path]) -> None:
    """Model vs champion vs baselines, every check with its verdict, and the report's path."""
    table = Table(title=f"Gate, version {report.version}: model vs champion vs PMV")
    keys = ("macro_f1", "macro_f1_pmv_rows", "log_loss", "log_loss_pmv_rows")
    for col in ("", "macro-F1", "macro-F1, PMV rows", "log loss", "log loss, PMV rows"):
        table.add_column(col, justify="left" if not col else "right")
    for name, m in report.compared().items():
        label = f"champion (v{report.champion})" if name == "champion" else name.replace("_", " ")
        table.add_row(label, *(f"{m[k]:.3f}" if k in m else "" for k in keys))
    checks = Table(title="checks", show_header=False)
    for check in report.checks:
        verdict = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
        checks.add_row(verdict, check.name, check.detail)
    console.print(table)
    console.print(checks)
    console.print(f"gate report: {paths['gate.html']}", highlight=False)


def versions(found: list[ModelVersion]) -> None:
    """Every version with its lifecycle tags, main metrics and gate verdict; production ●."""
    table = Table(title="conforto model versions")
    for col in ("", "version", "tags", "created", "macro-F1", "accuracy", "gate"):
        table.add_column(col)
    for version in found:
        r = version.record()
        m = r["metrics"]
        table.add_row(
            "[bold green]●[/]" if "production" in r["aliases"] else "",
            r["version"],
            ", ".join(r["tags"]),
            r["created"],
            f"{m.get('macro_f1', float('nan')):.3f}",
            f"{m.get('accuracy', float('nan')):.3f}",
            f"[red]rejected:[/] {r['rejected']}" if r["rejected"] else "",
        )
    console.print(table)
    console.print("● production", style="dim")


def audit(moves: list[Move]) -> None:
    """The audit log of production moves."""
    table = Table(title="production moves")
    for col in ("time", "action", "from", "to", "reason", "command", "user"):
        table.add_column(col)
    for m in moves:
        table.add_row(m.time, m.action, m.previous or "-", m.to, m.reason, m.command, m.user)
    console.print(table)


def drift_line(report: DriftReport) -> str:
    """The data set's verdict in one line: how many inputs drifted, against what."""
    drifted = report.dataset_drift
    verdict = "[bold red]the inputs have drifted[/]" if drifted else "no data-set drift"
    found = report.drifted_features
    names = f" ({', '.join(found)})" if found else ""
    return (
        f"{verdict}: {len(found)} of "
        f"{sum(f.enough_data for f in report.features)} inputs with enough data drifted{names} "
        f"(share {report.share:.2f}, threshold {report.drift_share:.2f}); "
        f"{report.current['rows']:,} rows vs {report.reference['rows']:,} "
        f"({report.reference['source']}, model {report.model_version})"
    )


def drift(report: DriftReport) -> None:
    """The inputs' verdicts, drifted first, and the data set's."""
    table = Table(title=f"Input drift, model {report.model_version}")
    for col in ("input", "kind", "statistic", "threshold", "verdict"):
        table.add_column(col, justify="right" if col in ("statistic", "threshold") else "left")
    for f in sorted(report.features, key=lambda f: (not f.drifted, not f.enough_data)):
        verdict = "[red]drifted[/]" if f.drifted else "ok" if f.enough_data else "too few values"
        stat = "–" if f.statistic is None else f"{f.statistic:.3f}"
        table.add_row(f.name, f.kind, stat, f"{f.threshold:.2f}", verdict)
    console.print(table)
    console.print(drift_line(report), highlight=False)


def performance(result: PerformanceReport) -> None:
    """Estimated, realised and validation figures, and the verdict."""
    table = Table(
        title=f"Live performance, model {result.model_version}",
        caption=f"estimated from the probabilities {result.estimator}",
    )
    for col in ("", "rows", "accuracy", "macro-F1"):
        table.add_column(col, justify="left" if not col else "right")
    est, real, val = result.estimated, result.realised, result.validation
    table.add_row(
        "estimated", f"{result.rows:,}", f"{est['accuracy']:.3f}", f"{est['macro_f1']:.3f}"
    )
    if real is not None:
        table.add_row(
            "realised (votes)",
            f"{result.labelled_rows:,}",
            f"{real.accuracy:.3f} ({real.accuracy_ci[0]:.3f}-{real.accuracy_ci[1]:.3f})",
            f"{real.macro_f1:.3f} ({real.macro_f1_ci[0]:.3f}-{real.macro_f1_ci[1]:.3f})",
        )
    else:
        table.add_row("realised (votes)", f"{result.labelled_rows:,}", "too few votes", "")
    table.add_row(
        "validation",
        "",
        f"{val.get('accuracy', float('nan')):.3f}",
        f"{val.get('macro_f1', float('nan')):.3f}",
    )
    console.print(table)
    if result.degraded:
        console.print("[bold red]degraded:[/] " + "; ".join(result.reasons), highlight=False)
    else:
        console.print("performance as validated", highlight=False)


def adaptation(changes: Sequence[StateChange], *, trail: bool) -> None:
    """States of site adaptation (``conforto monitor adaptation``): each site's current one, or
    every state of one site when ``trail``.
    """
    from conforto._adaptation.site import SiteAdjustment

    if not changes:
        console.print("no site adaptation learned yet: no occupant has voted on a site's answer")
        return
    title = "Every state of the site's adaptation" if trail else "Site adaptation, by site"
    table = Table(title=title)
    columns = (
        "model",
        "site",
        "votes",
        "last vote",
        "learned (UTC)",
        "warmer (nats)",
        "slope (nats/K)",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "site") else "right")
    for change in changes:
        state = change.state
        learned = SiteAdjustment.from_json(state.state)
        table.add_row(
            change.model_version,
            state.site,
            f"{state.votes:,}",
            str(state.version),
            change.created.strftime("%Y-%m-%d %H:%M:%S"),
            f"{learned.offset[2] - learned.offset[0]:+.2f}",
            f"{learned.slope:+.3f}",
        )
    console.print(table)


def compare(report: CompareReport) -> None:
    """Each challenger of the window beside production (``conforto monitor compare``)."""
    from conforto._monitor.compare import CanaryComparison, ShadowComparison

    table = Table(title=f"Production and its challengers ({report.predictions:,} predictions)")
    for col in ("challenger", "predictions", "agreement", "votes", "Δ accuracy", "Δ macro-F1"):
        table.add_column(col, justify="left" if col == "challenger" else "right")
    entries: list[tuple[str, ShadowComparison | CanaryComparison]] = [
        *((f"shadow {v}", e) for v, e in report.shadow.items()),
        *((f"canary {v}", e) for v, e in report.canary.items()),
    ]
    if report.adaptation is not None:
        entries.append(("site adaptation", report.adaptation))
    for name, entry in entries:
        if isinstance(entry, ShadowComparison):
            counted, votes, agreement = entry.predictions, entry.votes, entry.agreement
        else:
            counted, votes, agreement = entry.predictions["canary"], entry.votes["canary"], None
        difference = entry.difference
        table.add_row(
            name,
            f"{counted:,}",
            "" if agreement is None else f"{agreement:.1%}",
            f"{votes:,}",
            *(
                f"{d.value:+.3f} ({d.ci[0]:+.3f} to {d.ci[1]:+.3f})"
                for d in (difference["accuracy"], difference["macro_f1"])
            )
            if difference
            else ("too few votes", ""),
        )
    if not entries:
        console.print("no challenger ran in this window, and site adaptation adjusted no answer")
        return
    console.print(table)
