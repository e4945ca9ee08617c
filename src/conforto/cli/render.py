"""How results look in a terminal: rich tables of validation, metrics, gate and registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from conforto.cli.common import console

if TYPE_CHECKING:
    from conforto.gate import GateReport
    from conforto.registry import Move
    from conforto.validation import ValidationReport
    from conforto.versions import ModelVersion


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


def summary_table(summary: dict[str, Any], title: str) -> Table:
    """Model vs PMV vs majority on the same rows (PMV binned has no probabilities: "-")."""
    table = Table(title=title)
    for col in ("", "rows", "accuracy", "macro-F1", "log loss", "Brier", "ECE"):
        table.add_column(col, justify="left" if not col else "right")

    def add(name: str, m: dict[str, float], probabilistic: bool = True) -> None:
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


def trained_model(target: Path) -> None:
    """A trained model's cross-validation table, the literature's split and where it lives."""
    metrics = json.loads((target / "metrics.json").read_text())
    console.print(summary_table(metrics["cv"], "Cross-validation, grouped by building"))
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
    for name, m in report.comparison.items():
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
