"""The gate's report: ``gate.json`` and ``gate.html`` with the bootstrap and slice plots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._reports import figure_uri, new_figure, render

if TYPE_CHECKING:
    from pathlib import Path

    from conforto._lifecycle.gate import GateReport


def _figure(report: GateReport) -> str | None:
    if not report.bootstrap:
        return None
    fig = new_figure(9.0, 3.0)
    axes = fig.subplots(1, 3)
    panels = (("macro_f1", "macro-F1"), ("log_loss", "log loss [nats]"))
    for ax, (key, label) in zip(axes[:2], panels, strict=True):
        ax.hist(report.bootstrap[key], bins=40, color="#4c72b0")
        ax.axvline(0.0, color="black", lw=1)
        ax.set_title(f"challenger − champion: {label}", fontsize=9)
    if report.slices:
        labels = [f"{r['slice']}={r['value']}"[:28] for r in report.slices]
        deltas = [r["delta"] for r in report.slices]
        colours = ["#c44e52" if d < 0 else "#55a868" for d in deltas]
        axes[2].barh(labels, deltas, color=colours)
        axes[2].tick_params(axis="y", labelsize=6)
        axes[2].axvline(0.0, color="black", lw=1)
        axes[2].set_title("Δ macro-F1 by slice", fontsize=9)
    else:
        axes[2].axis("off")
    return figure_uri(fig)


def write_gate_report(report: GateReport, out: Path) -> dict[str, Path]:
    """Write ``gate.json`` and ``gate.html`` (checks, comparison table, bootstrap plot).

    Returns
    -------
    dict
        ``{"gate.json": path, "gate.html": path}``.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {"gate.json": out / "gate.json", "gate.html": out / "gate.html"}
    atomic_write_json(paths["gate.json"], report.to_dict())
    atomic_write_text(
        paths["gate.html"], render("gate.html", report=report, figure=_figure(report))
    )
    return paths
