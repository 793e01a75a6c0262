"""HR exports: monthly headcount snapshots and terminations. Employee ids are replaced by
salted hashes before anything (accepted or quarantined) is written; bad rows keep their reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from assets.landing.exports import ExportRows
from assets.landing.validation import Checked, RowError, parse_flag, parse_timestamp, start, supersede_duplicates

HEADCOUNT_COLUMNS = ("snapshot_date", "employee_id", "org_unit", "role", "critical_role")
TERMINATION_COLUMNS = ("employee_id", "org_unit", "role", "critical_role", "termination_date", "voluntary")


def parse_headcount(export: ExportRows, org_units: set[str], now: datetime,
                    pseudonymise: Callable[[str], str]) -> Checked:
    """One accepted row per (employee, snapshot date); later duplicate lines win."""
    return _parse(export, HEADCOUNT_COLUMNS, org_units, now, pseudonymise, date_column="snapshot_date",
                  flags=("critical_role",))


def parse_terminations(export: ExportRows, org_units: set[str], now: datetime,
                       pseudonymise: Callable[[str], str]) -> Checked:
    """One accepted row per (employee, termination date); later duplicate lines win."""
    return _parse(export, TERMINATION_COLUMNS, org_units, now, pseudonymise, date_column="termination_date",
                  flags=("critical_role", "voluntary"))


def _parse(export, columns, org_units, now, pseudonymise, date_column, flags) -> Checked:
    missing = [c for c in columns if c not in export.header]
    if missing:
        raise ValueError(f"HR export: columns not found: {missing}; the file has {export.header}")
    checked = start(export)
    candidates: list[tuple[int, dict, dict]] = []
    for line, row in zip(export.lines, export.rows):
        employee = row["employee_id"].strip()
        # The raw row is quarantined with the hash too: no plain employee id reaches the warehouse.
        raw = {**row, "employee_id": pseudonymise(employee) if employee else ""}
        try:
            if not employee:
                raise RowError("missing id: employee_id is empty")
            parsed = {
                "employee_id": raw["employee_id"],
                "org_unit": row["org_unit"].strip(),
                "role": row["role"].strip(),
                date_column: parse_timestamp(row[date_column], date_column, now).date().isoformat(),
                **{flag: str(parse_flag(row[flag], flag)).lower() for flag in flags},
            }
            if parsed["org_unit"] not in org_units:
                raise RowError(f"unknown team: org unit {parsed['org_unit']!r} is not in the team map's hr_org_units")
            candidates.append((line, raw, parsed))
        except RowError as error:
            checked.reject(line, raw, str(error))
    supersede_duplicates(checked, candidates, key=lambda r: (r["employee_id"], r[date_column]), order=lambda r: 0,
                         what=f"(employee, {date_column})")
    return checked
