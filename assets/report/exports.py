"""Writing the report's tables as CSV files and one XLSX workbook (one sheet per table).

Files are written next to their final name and then renamed over it, so a reader never
opens a half-written file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from assets.report.inputs import Coverage
from assets.report.wording import CAVEATS, KPI_QUARTERS_NOTE, suppression_sentence

HTML_NAME = "psafe_report.html"
XLSX_NAME = "psafe_report.xlsx"


def replace_file(path: Path, write) -> Path:
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)
    return path


def write_html(folder: Path, html: str) -> Path:
    return replace_file(folder / HTML_NAME, lambda p: p.write_text(html, encoding="utf-8"))


def write_csvs(folder: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Path]:
    return {
        name: replace_file(folder / f"{name}.csv", lambda p, t=table: t.to_csv(p, index=False))
        for name, table in tables.items()
    }


def about_sheet(coverage: Coverage, generated_at: datetime, absent: Sequence[str] = (),
                tables: Sequence[str] = ()) -> pd.DataFrame:
    """The workbook's first sheet: what the tables are (``tables``: the sheets that follow; the
    units of kpi_quarters), why KPIs are missing (``absent``: the report's sentences) and the
    caveats, for readers who open the workbook without the report."""
    rows = [
        ("Generated", f"{generated_at:%Y-%m-%d %H:%M} UTC by the psafe nightly pipeline; the report is {HTML_NAME}"),
        ("Data", f"{coverage.first_month} to {coverage.last_month}, {coverage.teams} teams"),
        ("Suppressed survey cells",
         suppression_sentence(coverage.survey_cells, coverage.suppressed_cells, coverage.suppressed_too_few)),
        *([("kpi_quarters", KPI_QUARTERS_NOTE)] if "kpi_quarters" in tables else []),
        *(("Not reported", sentence) for sentence in absent),
        *CAVEATS,
    ]
    return pd.DataFrame(rows, columns=["topic", "note"])


def write_xlsx(folder: Path, tables: dict[str, pd.DataFrame], about: pd.DataFrame) -> Path:
    def write(path: Path) -> None:
        with pd.ExcelWriter(path, engine="openpyxl") as workbook:
            about.to_excel(workbook, sheet_name="about", index=False)
            for name, table in tables.items():
                # Excel limits sheet names to 31 characters.
                table.to_excel(workbook, sheet_name=name[:31], index=False)

    return replace_file(folder / XLSX_NAME, write)


def export_names(tables: dict[str, pd.DataFrame]) -> list[str]:
    return [f"{name}.csv" for name in tables] + [XLSX_NAME]
