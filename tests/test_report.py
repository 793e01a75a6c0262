"""The CIO report as a reader sees it: the nightly job on a small synthetic organisation writes
the HTML file and its exports; real headless Chromium opens the file; the visible text, the
charts and the network traffic are checked against the warehouse tables.

The full-page screenshot is saved under pytest's temporary folder and, when the environment
variable PSAFE_REPORT_SCREENSHOT names a file, copied there.
"""

import math
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest
from browser import chromium, ensure_chromium

from assets.models.stats import cluster_warning
from assets.report.exports import HTML_NAME, XLSX_NAME
from assets.report.html import render_report
from assets.report.inputs import SAFETY_PER_SD, read_report_inputs
from assets.report.wording import result_notes, result_sentence
from pipelines.demo import run_nightly, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing

# Small and fast, yet with survey cells below 5 respondents (teams of 5) to suppress.
SPEC = OrgSpec(seed=3, n_teams=8, n_months=9)
MINUS = "\u2212"


def num(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}".replace("-", MINUS)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    org = generate(SPEC)
    workdir = tmp_path_factory.mktemp("report")
    landing, warehouse = workdir / "landing", workdir / "warehouse.duckdb"
    write_landing(org, landing)
    with start_sandbox(org) as sandbox:
        result = run_nightly(sandbox, org, warehouse, landing)
    assert result.success
    return SimpleNamespace(org=org, warehouse=warehouse, folder=workdir / "report", result=result)


def table(warehouse, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).df()


def first_row(warehouse, sql: str) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).fetchone()


@pytest.fixture(scope="module")
def seen(nightly, tmp_path_factory):
    """What Chromium shows of the report: visible text, table cells, images, requests."""
    executable = ensure_chromium()
    screenshot = tmp_path_factory.mktemp("screenshot") / "psafe_report.png"
    requests: list[str] = []
    errors: list[str] = []  # console errors include content-security-policy violations
    with chromium(executable) as browser:
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((nightly.folder / HTML_NAME).as_uri(), wait_until="load")
        view = SimpleNamespace(
            title=page.title(),
            text=page.inner_text("body"),
            correlation_rows=[
                row.locator("td").all_inner_texts() for row in page.locator("#correlation-table tbody tr").all()
            ],
            result_rows=[row.locator("td").all_inner_texts() for row in page.locator("#results-table tbody tr").all()],
            images=page.eval_on_selector_all(
                "img",
                "imgs => imgs.map(i => ({complete: i.complete, natural: i.naturalWidth, "
                "width: i.getBoundingClientRect().width, height: i.getBoundingClientRect().height}))",
            ),
            requests=requests,
            errors=errors,
            screenshot=screenshot,
        )
        page.screenshot(path=str(screenshot), full_page=True)
    if os.environ.get("PSAFE_REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["PSAFE_REPORT_SCREENSHOT"])
    print(f"report screenshot: {screenshot}")
    return view


def test_the_nightly_job_writes_the_report_and_its_exports(nightly):
    [materialization] = [
        event.materialization for event in nightly.result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "report/cio_report"
    ]
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["html"] == str(nightly.folder / HTML_NAME)
    assert metadata["xlsx"] == str(nightly.folder / XLSX_NAME)
    for key in ("html", "xlsx", "csv_kpi_correlations", "csv_safety_ttr_regression", "csv_coverage_by_month"):
        assert os.path.getsize(metadata[key]) > 0, key


def test_reader_sees_every_row_of_the_correlation_table(nightly, seen):
    correlations = table(nightly.warehouse, "select * from models.kpi_correlations")
    expected = [
        [row.kpi, num(row.r), f"{num(row.ci_low)} to {num(row.ci_high)}", str(row.n_teams), str(row.n_team_months)]
        for row in correlations.itertuples()
    ]
    assert seen.correlation_rows == expected
    assert len(expected) == 5


def test_plain_language_sentences_carry_the_numbers_of_the_tables(nightly, seen):
    regression = table(nightly.warehouse, "select * from models.safety_ttr_regression").iloc[0]
    faster = -math.expm1(regression.estimate)
    near, far = sorted((-math.expm1(regression.ci_high), -math.expm1(regression.ci_low)))
    assert faster > 0, "safer teams resolve faster in this organisation's ground truth"
    assert (
        f"Teams one standard deviation safer took {faster:.0%} less time to resolve incidents "
        f"(95% CI {near:.0%} to {far:.0%}), across {regression.n_teams} teams; "
        "this is an association, not proof of cause." in seen.text
    )
    [row] = seen.result_rows
    assert row[:4] == ["log TTR", "psychological safety (lagged, per SD)", num(regression.estimate, 3),
                       f"{num(regression.ci_low, 3)} to {num(regression.ci_high, 3)}"]
    assert row[-2:] == [str(regression.n_teams), str(regression.n_periods)]

    proactive = table(nightly.warehouse, "select * from models.kpi_correlations where kpi = 'proactive share'").iloc[0]
    assert f"Across {proactive.n_teams} teams" in seen.text
    assert f"(r = {num(proactive.r)}, 95% CI {num(proactive.ci_low)} to {num(proactive.ci_high)}" in seen.text


def test_caveats_and_the_few_teams_warning_are_visible(nightly, seen):
    fewest, regression_teams = first_row(
        nightly.warehouse,
        "select least((select min(n_teams) from models.kpi_correlations), n_teams), n_teams "
        "from models.safety_ttr_regression",
    )
    assert "association, not a cause" in seen.text
    assert "Reporting bias. Safer teams may report more incidents and near misses" in seen.text
    assert "Accountability. These figures describe groups of teams. Do not use them to rank" in seen.text
    assert f"Fewer than 40 teams. Some results rest on only {fewest} teams." in seen.text
    assert f"Only {regression_teams} teams (fewer than 40): treat this interval as optimistic." in seen.text


def test_suppressed_cells_are_counted_and_no_team_level_value_is_shown(nightly, seen):
    suppressed, cells = first_row(
        nightly.warehouse, "select count(*) filter (where is_suppressed), count(*) from marts.fct_team_survey_waves"
    )
    assert suppressed > 0, "the test organisation must have cells below 5 respondents"
    assert (
        f"Suppressed cells. {suppressed} of {cells} team survey results (team x quarter) had fewer than 5 "
        "respondents and are suppressed to protect anonymity" in seen.text
    )
    html = (nightly.folder / HTML_NAME).read_text()
    exports = " ".join(path.read_text() for path in nightly.folder.glob("*.csv"))
    for team in nightly.org.teams:
        assert team.name not in html and team.name not in exports, team.name


def test_coverage_figures_match_the_marts(nightly, seen):
    incidents, acknowledged = first_row(
        nightly.warehouse, "select count(*), count(tta_seconds) / count(*) from marts.fct_incidents"
    )
    assert f"{incidents:,}\nincidents" in seen.text
    assert f"{acknowledged:.0%}\nof incidents acknowledged by a person" in seen.text
    # Onset is optional in the incident mart; the report must say "not recorded" until it is there.
    has_onset = first_row(
        nightly.warehouse,
        "select count(*) > 0 from information_schema.columns "
        "where table_name = 'fct_incidents' and column_name = 'ttd_seconds'",
    )[0]
    if has_onset:
        onset_known = first_row(nightly.warehouse, "select count(ttd_seconds) / count(*) from marts.fct_incidents")[0]
        assert f"{onset_known:.0%}\nof incidents with a known onset" in seen.text
    else:
        assert "not recorded\nof incidents with a known onset" in seen.text
    assert "9\nmonths covered (January 2024 to September 2024)" in seen.text


def test_charts_render_with_a_size_and_nothing_is_fetched_from_elsewhere(seen):
    assert len(seen.images) == 3
    for image in seen.images:
        assert image["complete"] and image["natural"] > 0 and image["width"] > 300 and image["height"] > 100, image
    assert seen.requests and all(url.startswith(("file://", "data:")) for url in seen.requests), seen.requests
    assert seen.errors == []
    assert seen.title == "Psychological safety and operational KPIs"
    assert seen.screenshot.stat().st_size > 50_000


def test_exports_read_back_equal_the_warehouse_tables(nightly):
    for name in ("kpi_correlations", "safety_ttr_regression"):
        stored = table(nightly.warehouse, f"select * from models.{name}").replace("", None)
        from_csv = pd.read_csv(nightly.folder / f"{name}.csv")
        from_xlsx = pd.read_excel(nightly.folder / XLSX_NAME, sheet_name=name)
        for exported in (from_csv, from_xlsx):
            pd.testing.assert_frame_equal(exported, stored, check_dtype=False, check_exact=False, rtol=1e-12)
    sheets = pd.ExcelFile(nightly.folder / XLSX_NAME).sheet_names
    assert sheets == ["about", "kpi_correlations", "safety_ttr_regression", "coverage", "coverage_by_month"]
    about = pd.read_excel(nightly.folder / XLSX_NAME, sheet_name="about").set_index("topic")["note"]
    assert about["Reporting bias."].startswith("Safer teams may report more incidents and near misses")
    assert about["Accountability."].startswith("These figures describe groups of teams")
    assert "fewer than 5 respondents; their values are in no sheet" in about["Suppressed survey cells"]


def test_without_a_results_table_the_report_says_so(nightly, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(nightly.warehouse, copy)
    with duckdb.connect(str(copy)) as conn:
        conn.execute("drop table models.safety_ttr_regression")
        inputs = read_report_inputs(conn)
    html = render_report(inputs, datetime.now(UTC), [])
    assert inputs.results is None and "safety_ttr_regression" not in inputs.exports
    assert "is not in the warehouse yet, so this report has no model results" in html
    assert "KPI correlation table" in html


def test_the_few_teams_warning_goes_from_40_teams_on(nightly):
    with duckdb.connect(str(nightly.warehouse), read_only=True) as conn:
        inputs = read_report_inputs(conn)
    many = replace(
        inputs, correlations=inputs.correlations.assign(n_teams=40), results=inputs.results.assign(n_teams=40)
    )
    assert "Fewer than 40 teams" in render_report(inputs, datetime.now(UTC), [])
    html = render_report(many, datetime.now(UTC), [])
    assert "Fewer than 40 teams" not in html and "treat this interval as optimistic" not in html


def test_a_result_whose_interval_spans_no_change_says_so():
    row = SimpleNamespace(kpi="log TTR", construct=SAFETY_PER_SD, estimate=0.05, ci_low=-0.1, ci_high=0.2,
                          n_teams=45, model="OLS")
    assert result_sentence(row) == (
        "Teams one standard deviation safer took 5% more time to resolve incidents (95% CI from 10% less "
        "to 22% more: the interval includes no difference), across 45 teams; this is an association, "
        "not proof of cause."
    )
    odds = SimpleNamespace(kpi="voluntary attrition", construct="safety within team", estimate=-0.3,
                           ci_low=-0.5, ci_high=-0.1, n_teams=45, model="binomial GLM")
    assert result_sentence(odds) == (
        "Teams one unit higher on safety within team had 26% lower odds of a person leaving voluntarily "
        "(95% CI 10% to 39%), across 45 teams; this is an association, not proof of cause."
    )


def test_model_warnings_other_than_few_teams_are_passed_on_and_a_failed_fit_is_named():
    failed = SimpleNamespace(kpi="proactive share", construct="safety", estimate=float("nan"), ci_low=float("nan"),
                             ci_high=float("nan"), n_teams=12,
                             warnings=cluster_warning(12) + "; MixedLM variance at zero: fell back to clustered OLS")
    assert result_sentence(failed) == (
        "No estimate for proactive share (safety): the model could not be fitted on this data."
    )
    assert result_notes(failed) == [
        "Only 12 teams (fewer than 40): treat this interval as optimistic.",
        "Model note: MixedLM variance at zero: fell back to clustered OLS.",
    ]
    assert result_notes(SimpleNamespace(n_teams=50, warnings="")) == []
