"""Data validation: one pandera schema built from the physical bounds, plus data-quality checks.

Two severities. *Impossible* values (outside :data:`conforto._data.bounds.PHYSICAL_BOUNDS`' hard
limits), a missing required column or an empty required column **fail**, even in one row.
*Implausible* values (outside the soft limits), high null rates, duplicate records, buildings
missing from the metadata and unknown category values **warn**.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandera.pandas as pa

from conforto._data.bounds import PHYSICAL_BOUNDS, Bounds
from conforto._data.categories import DOMAINS, unknown_values
from conforto._data.columns import REQUIRED_TRAINING
from conforto._fileio import atomic_write_json, atomic_write_text
from conforto._reports import render

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import pandas as pd

    from conforto._data.load import Dataset

Status = Literal["pass", "warn", "fail"]

#: Null rate of a required column above which validation warns.
NULL_RATE_WARN = 0.05
#: Columns that identify a row, not part of its content (ignored when finding duplicates).
ROW_IDS = ("record_id", "index")
_EXAMPLE_ROWS = 5


@dataclass
class Check:
    """The outcome of one validation rule.

    Attributes
    ----------
    name
        Short identifier, e.g. ``"range:rh"``.
    column
        Column concerned, or ``None`` for table-wide checks.
    rule
        What was checked, in words.
    status
        ``pass``, ``warn`` or ``fail``.
    rows
        Number of offending rows.
    examples
        A few offending rows (the column and identifiers).
    """

    name: str
    column: str | None
    rule: str
    status: Status
    rows: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Every check run on a data set."""

    checks: list[Check]
    n_rows: int
    n_columns: int
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        """Checks with status ``fail``."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        """Checks with status ``warn``."""
        return [c for c in self.checks if c.status == "warn"]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failed

    def summary(self) -> str:
        """One line naming the failing columns and rules, or counting warnings."""
        if self.ok:
            return f"valid: {len(self.checks)} checks, {len(self.warnings)} warnings"
        parts = [f"{c.column or 'table'}: {c.rule} ({c.rows} rows)" for c in self.failed]
        return "invalid: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "sources": self.sources,
            "counts": {
                s: sum(c.status == s for c in self.checks) for s in ("pass", "warn", "fail")
            },
            "checks": [asdict(c) for c in self.checks],
        }


def _range_rule(bounds: Bounds, low: float, high: float, severity: str) -> str:
    lo = "" if math.isinf(low) else f"{low:g}"
    hi = "" if math.isinf(high) else f"{high:g}"
    span = f">= {lo}" if not hi else f"<= {hi}" if not lo else f"within {lo}..{hi}"
    return f"{severity}: {bounds.description} must be {span} {bounds.unit}".rstrip()


def build_schema(
    columns: Iterable[str], *, severity: Literal["hard", "soft"], required: Iterable[str] = ()
) -> pa.DataFrameSchema:
    """Build the pandera schema of the physical bounds.

    Parameters
    ----------
    columns
        Columns present in the data (bounds of absent optional columns are skipped).
    severity
        ``"hard"`` for the impossible limits, ``"soft"`` for the implausible ones.
    required
        Columns the schema requires to be present.

    Returns
    -------
    pandera.DataFrameSchema
        One nullable float column per bounded column, with an ``in_range`` check.
    """
    present, required = set(columns), set(required)
    spec: dict[str, pa.Column] = {}
    for name in sorted((present | required) & set(PHYSICAL_BOUNDS)):
        bounds = PHYSICAL_BOUNDS[name]
        low, high = (
            (bounds.hard_min, bounds.hard_max)
            if severity == "hard"
            else (bounds.soft_min, bounds.soft_max)
        )
        checks = (
            []
            if math.isinf(low) and math.isinf(high)
            else [
                pa.Check.in_range(
                    low,
                    high,
                    error=_range_rule(
                        bounds, low, high, "impossible" if severity == "hard" else "implausible"
                    ),
                )
            ]
        )
        spec[name] = pa.Column(float, checks, nullable=True, required=name in required)
    for name in sorted(required - set(PHYSICAL_BOUNDS)):
        spec[name] = pa.Column(nullable=True, required=True)
    return pa.DataFrameSchema(spec, name=f"conforto-{severity}")


def _examples(
    frame: pd.DataFrame, index: Iterable[Any], column: str | None
) -> list[dict[str, Any]]:
    keep = list(
        dict.fromkeys(c for c in ("record_id", "building_id", column) if c and c in frame.columns)
    )
    rows = frame.loc[list(index)[:_EXAMPLE_ROWS], keep]
    return [{str(k): _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _schema_checks(frame: pd.DataFrame, severity: Literal["hard", "soft"]) -> list[Check]:
    schema = build_schema(
        frame.columns, severity=severity, required=REQUIRED_TRAINING if severity == "hard" else ()
    )
    status: Status = "fail" if severity == "hard" else "warn"
    found: dict[tuple[str, str], Check] = {}
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=True):
            if check == "column_in_dataframe":
                for missing in group["failure_case"]:
                    found[(missing, "missing")] = Check(
                        f"required:{missing}", missing, "required column is missing", "fail"
                    )
                continue
            index = group["index"].dropna().unique()
            found[(str(column), str(check))] = Check(
                f"{'range' if severity == 'hard' else 'plausible'}:{column}",
                str(column),
                str(check),
                status,
                len(index),
                _examples(frame, index, str(column)),
            )
    checks = list(found.values())
    for name, column in schema.columns.items():
        if not any(c.column == name for c in checks) and name in frame.columns:
            rule = column.checks[0].error if column.checks else "present"
            prefix = "range" if severity == "hard" else "plausible"
            checks.append(Check(f"{prefix}:{name}", name, str(rule), "pass"))
    return checks


def _null_checks(frame: pd.DataFrame) -> list[Check]:
    """Required training columns: fail when entirely null, warn above the null rate."""
    checks = []
    for name in REQUIRED_TRAINING:
        if name not in frame.columns:
            continue
        nulls = frame[name].isna()
        rate = float(nulls.mean())
        if nulls.all():
            status: Status = "fail"
        else:
            status = "warn" if rate > NULL_RATE_WARN else "pass"
        checks.append(
            Check(
                f"nulls:{name}",
                name,
                f"null rate {rate:.1%} (warns above {NULL_RATE_WARN:.0%})",
                status,
                int(nulls.sum()),
                _examples(frame, frame.index[nulls], name),
            )
        )
    return checks


def _duplicate_check(frame: pd.DataFrame) -> Check:
    """Rows identical in everything but their id (warn)."""
    content = [c for c in frame.columns if c not in ROW_IDS]
    dup = frame.duplicated(subset=content, keep="first")
    return Check(
        "duplicates",
        None,
        "rows identical in everything but their id",
        "warn" if dup.any() else "pass",
        int(dup.sum()),
        _examples(frame, frame.index[dup], None),
    )


def _metadata_check(frame: pd.DataFrame, unmatched: list[int]) -> Check:
    """Buildings absent from the metadata (warn)."""
    missing_meta = frame["building_id"].isin(unmatched) if "building_id" in frame else None
    return Check(
        "metadata",
        "building_id",
        f"buildings missing from the metadata: {unmatched[:20]}",
        "warn" if unmatched else "pass",
        int(missing_meta.sum()) if missing_meta is not None else 0,
    )


def _domain_checks(frame: pd.DataFrame) -> list[Check]:
    """Category values outside the known domains, after normalising spelling (warn)."""
    checks = []
    for column, domain in DOMAINS.items():
        if column not in frame.columns:
            continue
        bad = unknown_values(frame, column)
        values = sorted(frame.loc[bad, column].astype(str).unique())[:10]
        checks.append(
            Check(
                f"domain:{column}",
                column,
                f"values outside the known {len(domain)}: {values}"
                if values
                else f"values within the known {len(domain)}",
                "warn" if bad.any() else "pass",
                int(bad.sum()),
                _examples(frame, frame.index[bad], column),
            )
        )
    return checks


def validate_frame(
    frame: pd.DataFrame,
    *,
    unmatched_buildings: Iterable[int] = (),
    sources: dict[str, str] | None = None,
) -> ValidationReport:
    """Run every check on a joined data set.

    Parameters
    ----------
    frame
        Joined measurements and metadata, canonical columns, categories normalised.
    unmatched_buildings
        Building ids missing from the metadata (see :class:`conforto._data.load.Dataset`).
    sources
        File names to record in the report.

    Returns
    -------
    ValidationReport
        All checks, passed or not; ``report.ok`` is False when any check failed.
    """
    checks = [
        *_schema_checks(frame, "hard"),
        *_schema_checks(frame, "soft"),
        *_null_checks(frame),
        _duplicate_check(frame),
        _metadata_check(frame, sorted(unmatched_buildings)),
        *_domain_checks(frame),
    ]
    return ValidationReport(checks, len(frame), frame.shape[1], dict(sources or {}))


def validate_dataset(dataset: Dataset) -> ValidationReport:
    """Validate a loaded :class:`~conforto._data.load.Dataset` (see :func:`validate_frame`)."""
    return validate_frame(
        dataset.frame,
        unmatched_buildings=dataset.unmatched_buildings,
        sources={k: str(v) for k, v in dataset.sources.items()},
    )


def write_validation(report: ValidationReport, out: Path) -> tuple[Path, Path]:
    """Write ``validation.json`` and a readable ``validation.html`` into ``out``.

    Returns
    -------
    tuple of pathlib.Path
        ``(json_path, html_path)``.
    """
    order = {"fail": 0, "warn": 1, "pass": 2}
    checks = sorted(report.checks, key=lambda c: (order[c.status], c.name))
    html = render("validation.html", report=report.to_dict(), checks=checks)
    return (
        atomic_write_json(out / "validation.json", report.to_dict()),
        atomic_write_text(out / "validation.html", html),
    )
