"""The CIO report asset: one self-contained HTML file plus CSV and XLSX exports."""

from datetime import UTC, datetime

import dagster as dg

from assets.report.exports import about_sheet, export_names, write_csvs, write_html, write_xlsx
from assets.report.html import render_report
from assets.report.inputs import SOURCE_TABLES, read_report_inputs
from assets.report.resource import ReportFolderResource
from assets.report.wording import absent_sentences
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.resource import WarehouseResource


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["report", "cio_report"],
    deps=[dg.AssetKey(table.split(".")) for table in SOURCE_TABLES],
    group_name="report",
    kinds={"html"},
)
def cio_report(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, report_folder: ReportFolderResource
) -> dg.MaterializeResult:
    """The report for CIO staff: one HTML file (no server, nothing loaded from elsewhere) that
    opens with the quarterly review (the organisation's survey scores per quarter with 95%
    CIs, which scales were measured, the KPIs per quarter, what changed since the previous
    quarter, Edmondson's zones as a chart of unnamed teams and counts, Clark's stages reached),
    then the main results of models.kpi_safety_effects in plain language (between teams, within a
    team, incident level; % changes in times, counts or odds with 95% CIs and BH q), a forest
    plot, a results table with each MixedLM's clustered-OLS cross-check, the KPI correlation
    table, charts, data coverage, the number of survey cells suppressed for anonymity and the
    caveats (association, reporting bias, accountability, fewer than 40 teams); where measured,
    whether accountability changes the safety association and how Clark's stages go with the
    KPIs. Its tables are
    also written as CSV files and one XLSX workbook, one sheet per table, the results table with
    every row as stored. Suppressed survey values appear nowhere. It reads the warehouse file
    alone: the restricted file of respondent-level data is not attached to its connection."""
    with duckdb.get_connection(restricted=False) as conn:
        inputs = read_report_inputs(conn)
    folder = report_folder.folder()
    generated_at = datetime.now(UTC)
    csvs = write_csvs(folder, inputs.exports)
    about = about_sheet(inputs.coverage, generated_at, absent_sentences(inputs.absent_kpis), list(inputs.exports))
    workbook = write_xlsx(folder, inputs.exports, about)
    html = write_html(folder, render_report(inputs, generated_at, export_names(inputs.exports)))
    context.log.info(f"report written to {html}; exports: {', '.join(p.name for p in csvs.values())}, {workbook.name}")
    return dg.MaterializeResult(
        metadata={
            "html": dg.MetadataValue.path(str(html)),
            "xlsx": dg.MetadataValue.path(str(workbook)),
            **{f"csv_{name}": dg.MetadataValue.path(str(path)) for name, path in csvs.items()},
            "results": 0 if inputs.results is None else len(inputs.results),
            "suppressed_survey_cells": inputs.coverage.suppressed_cells,
        }
    )
