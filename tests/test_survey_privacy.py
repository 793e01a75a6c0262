"""The nightly job on a small generated organisation with bad rows planted in its exports:
respondent rows stay in the restricted schema, no suppressed cell can be recovered by
subtraction from any published total, bad rows are quarantined and counted, and the results
table is written."""

import csv

import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from assets.landing.survey import EDMONDSON_ITEMS
from assets.models.assets import anonymity_holds
from pipelines.demo import run_nightly, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing

PLANTED_SURVEY = {"out of range": 1, "unknown team": 1, "future date": 1, "duplicate": 1}


def append_rows(path, rows):
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=header).writerows(rows)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    org = generate(OrgSpec(seed=11, n_teams=12, n_months=12))
    workdir = tmp_path_factory.mktemp("privacy")
    landing, warehouse = workdir / "landing", workdir / "warehouse.duckdb"
    paths = write_landing(org, landing)
    good = org.survey_rows[0]
    append_rows(paths["survey"], [
        {**good, "response_id": "BAD1", EDMONDSON_ITEMS[3][0]: 9},
        {**good, "response_id": "BAD2", "team": "Atlantis"},
        {**good, "response_id": "BAD3", "submitted_at": "2099-01-01 00:00:00"},
        {**good},  # the same response exported twice
    ])
    append_rows(paths["headcount"], [{**org.headcount_rows[0], "org_unit": "OU-UNKNOWN"}])
    append_rows(paths["terminations"], [{**org.termination_rows[0], "termination_date": "2099-05-01"}])
    with start_sandbox(org) as sandbox:
        result = run_nightly(sandbox, org, warehouse, landing)
    assert result.success
    return org, result, duckdb.connect(str(warehouse), read_only=True)


@pytest.mark.slow
def test_respondent_rows_live_only_in_the_restricted_schema(nightly):
    _, _, conn = nightly
    columns = conn.sql(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema <> 'restricted'"
    ).fetchall()
    assert {schema for schema, _, _ in columns} >= {"raw", "staging", "marts", "models", "quarantine"}
    leaks = [(s, t, c) for s, t, c in columns if c in ("response_id", "submitted_at", "item_no", "answer")
             or c in {text for text, _ in EDMONDSON_ITEMS}]
    assert leaks == []
    assert conn.sql("select count(*) from restricted.stg_survey__responses").fetchone()[0] > 1000


@pytest.mark.slow
def test_no_published_cell_has_fewer_than_five_respondents(nightly):
    _, result, conn = nightly
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "anonymity_holds"]
    assert check.passed and check.metadata["respondent_columns_outside_restricted"].value == []
    assert conn.sql("select min(n_respondents) from marts.fct_team_survey_waves").fetchone()[0] >= 5
    assert conn.sql("select count(*) from marts.fct_team_survey_waves where is_suppressed "
                    "and (n_respondents is not null or score_mean is not null or rwg_j is not null)").fetchone()[0] == 0
    assert conn.sql("select min(safety_n_respondents) from marts.mart_team_month").fetchone()[0] >= 5


@pytest.mark.slow
def test_subtracting_published_cells_from_wave_totals_recovers_no_suppressed_cell(nightly):
    _, _, conn = nightly
    true_cells = dict(((team, wave, scale), (n, mean)) for team, wave, scale, n, mean in conn.sql(
        """
        select team, wave_quarter, item_set, count(*), avg(person_score) from (
            select response_id, team, wave_quarter, item_set, avg(score) as person_score
            from restricted.stg_survey__responses group by all
            having count(*) >= (case item_set when 'psychological_safety' then 5 when 'accountability' then 3 else 2 end))
        group by all
        """).fetchall())
    attacks = conn.sql(
        """
        select w.wave_quarter, w.scale, w.n_respondents - coalesce(sum(c.n_respondents), 0) as residual_n,
            (w.n_respondents * w.score_mean - coalesce(sum(c.n_respondents * c.score_mean), 0))
                / nullif(w.n_respondents - coalesce(sum(c.n_respondents), 0), 0) as residual_mean
        from marts.fct_survey_waves as w
        left join marts.fct_team_survey_waves as c
            on c.wave_quarter = w.wave_quarter and c.scale = w.scale and not c.is_suppressed
        where w.n_respondents is not null
        group by w.wave_quarter, w.scale, w.n_respondents, w.score_mean
        """).fetchall()
    hidden_by_wave = dict(((wave, scale), teams) for wave, scale, teams in conn.sql(
        "select wave_quarter, scale, list(team) from marts.fct_team_survey_waves where is_suppressed group by all"
    ).fetchall())
    assert hidden_by_wave, "the organisation should have suppressed cells for this test to mean anything"
    for wave, scale, residual_n, residual_mean in attacks:
        hidden = hidden_by_wave.get((wave, scale), [])
        if not hidden:
            assert residual_n == 0
            continue
        assert len(hidden) >= 2 and residual_n >= 5
        for team in hidden:
            n, mean = true_cells[(team, wave, scale)]
            assert (residual_n, round(residual_mean, 9)) != (n, round(mean, 9)), (team, wave, scale)


@pytest.mark.slow
def test_bad_rows_are_quarantined_with_reasons_and_counted(nightly):
    _, result, conn = nightly
    survey = dict(conn.sql("select split_part(reason, ':', 1), count(*) from restricted.survey__responses_quarantine "
                           "group by 1").fetchall())
    assert survey == PLANTED_SURVEY
    assert conn.sql("select reason from quarantine.hr__headcount").fetchall() == [
        ("unknown team: org unit 'OU-UNKNOWN' is not in the team map's hr_org_units",)]
    assert conn.sql("select split_part(reason, ':', 1) from quarantine.hr__terminations").fetchall() == [("future date",)]
    assert conn.sql("select count(*) from quarantine.hr__headcount where loaded_at is null").fetchone()[0] == 0
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert metadata["restricted/survey__responses"]["quarantined"].value == 4
    assert metadata["restricted/survey__responses"]["quarantined_by_reason"].value == PLANTED_SURVEY
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    check = checks[("restricted/survey__responses", "quarantine_is_empty")]
    assert not check.passed and check.severity.value == "WARN"
    assert checks[("raw/hr__terminations", "quarantine_is_empty")].metadata["quarantined"].value == 1


@pytest.mark.slow
def test_survey_waves_report_reliability_and_agreement(nightly):
    _, _, conn = nightly
    waves = conn.sql("select cronbach_alpha, icc1, icc2, n_teams, n_teams_published from marts.fct_survey_waves "
                     "where scale = 'psychological_safety'").fetchall()
    assert len(waves) == 4
    for alpha, icc1, icc2, n_teams, published in waves:
        assert 0.5 < alpha < 1 and 0 < icc1 < icc2 < 1 and n_teams == 12 and published <= 12
    rwg = conn.sql("select min(rwg_j), max(rwg_j) from marts.fct_team_survey_waves").fetchone()
    assert 0.5 < rwg[0] <= rwg[1] <= 1


@pytest.mark.slow
def test_results_table_reports_every_kpi_and_warns_about_twelve_teams(nightly):
    _, _, conn = nightly
    rows = conn.sql("select kpi, construct, estimate, q_value, n_teams, warnings from models.kpi_safety_effects "
                    "where role = 'main'").fetchall()
    assert {kpi for kpi, *_ in rows} >= {"log median TTR", "log median TTA", "incidents per head", "proactive share",
                                         "voluntary attrition", "critical-role voluntary attrition",
                                         "log TTR (incident level)"}
    # Every estimate warns that 12 teams are few; a row without one (too few events) says why instead.
    estimated = [warnings for _, _, estimate, _, _, warnings in rows if estimate is not None]
    assert estimated and all("teams" in warnings and "unreliable" in warnings for warnings in estimated), rows
    assert all("too few events" in warnings for _, _, estimate, _, _, warnings in rows if estimate is None), rows


def test_the_anonymity_check_fails_on_a_leaky_warehouse(tmp_path):
    path = tmp_path / "leaky.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema marts; create schema staging")
        conn.execute("""create table marts.fct_team_survey_waves as select * from (values
            ('A', date '2024-01-01', 'psychological_safety', false, 3, 4.2, 0.5, 0.9),
            ('B', date '2024-01-01', 'psychological_safety', true, null, null, null, null),
            ('C', date '2024-01-01', 'psychological_safety', false, 9, 4.0, 0.4, 0.8),
            ('D', date '2024-01-01', 'psychological_safety', false, 6, 7.0, 0.0, 1.0),
            ('D', date '2024-01-01', 'accountability', true, null, null, null, null))
            t(team, wave_quarter, scale, is_suppressed, n_respondents, score_mean, score_sd, rwg_j)""")
        conn.execute("create table staging.answers as select 'R1' as response_id, 5 as answer")
    result = anonymity_holds(duckdb=DuckDBResource(database=str(path)))
    assert not result.passed
    assert result.metadata["published_under_5"].value == 1
    assert result.metadata["published_without_spread"].value == 1
    assert result.metadata["teams_suppressed_in_some_scales_only"].value == 1
    assert result.metadata["waves_with_one_suppressed_cell"].value == 2
    assert sorted(result.metadata["respondent_columns_outside_restricted"].value) == [
        "staging.answers.answer", "staging.answers.response_id"]
