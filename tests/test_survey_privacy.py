"""The nightly job on a small generated organisation with bad rows planted in its exports:
respondent rows stay in the restricted file (the warehouse file, opened alone as an analyst
opens it, holds none), no suppressed cell can be recovered by subtraction from any published
total, bad rows are quarantined and counted, and the results table is written. Then anonymity
across nights: the survey steps run on three nights with late answers, and the differencing,
wave-total and count-bounds attacks fail against what they publish (each first shown to work
against a pipeline that decides suppression every night)."""

import csv
import json
import shutil
import subprocess
import sys
from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from survey_exports import survey_file

from assets.landing.assets import survey_responses
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import EDMONDSON_ITEMS
from assets.models.assets import anonymity_holds, survey_waves
from assets.models.psychometrics import MIN_RESPONDENTS, PRIMARY, person_scores, survey_wave_tables
from assets.report.assets import cio_report
from assets.report.resource import ReportFolderResource
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.restricted import read_only_connection
from pipelines.demo import run_nightly, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing

PLANTED_SURVEY = {"not a whole number": 1, "unknown team": 1, "future date": 1, "duplicate": 1}


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
        {**good, "response_id": "BAD1", EDMONDSON_ITEMS[3][0]: "4.5"},
        {**good, "response_id": "BAD2", "team": "Atlantis"},
        {**good, "response_id": "BAD3", "submitted_at": "2099-01-01 00:00:00"},
        {**good},  # the same response exported twice
    ])
    append_rows(paths["headcount"], [{**org.headcount_rows[0], "org_unit": "OU-UNKNOWN"}])
    append_rows(paths["terminations"], [{**org.termination_rows[0], "termination_date": "2099-05-01"}])
    with start_sandbox(org) as sandbox:
        result = run_nightly(sandbox, org, warehouse, landing)
    assert result.success
    # What the pipeline's account reads: the warehouse with the restricted file attached.
    return org, result, read_only_connection(str(warehouse)), warehouse


# An analyst's look at the warehouse file, in a process of its own (DuckDB shares one instance
# per file within a process, and the pipeline's has the restricted file attached): the file
# alone, its catalogs and schemas, its columns, and the tables whose text columns hold any of
# the response ids given on stdin, whole or inside a longer text (a quarantined raw row, JSON).
ANALYST_LOOK = """
import json, re, sys
import duckdb

ids = re.compile("|".join(re.escape(i) for i in json.load(sys.stdin)))
conn = duckdb.connect(sys.argv[1], read_only=True)
columns = conn.sql("select schema_name, table_name, column_name, data_type from duckdb_columns() "
                   "where database_name = current_database()").fetchall()
texts = {}
for schema, table, column, data_type in columns:
    if data_type in ("VARCHAR", "JSON"):
        texts.setdefault(f'"{schema}"."{table}"', []).append(column)
holding = {}
for table, names in texts.items():
    values = {v for (v,) in conn.sql(" union ".join(f'select "{n}"::varchar from {table}' for n in names)).fetchall()}
    found = sorted({m.group() for v in values if v for m in [ids.search(v)] if m})
    if found:
        holding[table] = found[:3]
print(json.dumps({
    "databases": [d for (d,) in conn.sql("select database_name from duckdb_databases() where not internal").fetchall()],
    "schemas": [s for (s,) in conn.sql("select schema_name from duckdb_schemas() "
                                       "where database_name = current_database()").fetchall()],
    "columns": [f"{s}.{t}.{c}" for s, t, c, _ in columns],
    "tables_searched": len(texts),
    "tables_holding_response_ids": holding,
}))
"""


def analyst_look(path, response_ids: list[str]) -> dict:
    return json.loads(subprocess.run([sys.executable, "-c", ANALYST_LOOK, str(path)], input=json.dumps(response_ids),
                                     capture_output=True, text=True, check=True).stdout)


@pytest.mark.slow
def test_the_warehouse_file_opened_alone_holds_no_respondent_row(nightly):
    _, _, pipeline, warehouse = nightly
    response_ids = sorted({rid for (rid,) in pipeline.sql(
        "select response_id from restricted.survey__responses union select response_id from "
        "restricted.stg_survey__responses").fetchall()} | {"BAD1", "BAD2", "BAD3"})  # the quarantined ones
    assert len(response_ids) > 100
    assert pipeline.sql("select count(*) from restricted.survey__responses_quarantine "
                        "where raw_row like '%BAD1%'").fetchone()[0] == 1
    assert pipeline.sql("select count(*) from restricted.stg_survey__responses").fetchone()[0] > 1000

    look = analyst_look(warehouse, response_ids)
    assert look["databases"] == ["warehouse"]
    assert {"raw", "staging", "marts", "models", "quarantine"} <= set(look["schemas"])
    assert "restricted" not in look["schemas"]
    respondent_columns = {"response_id", "submitted_at", "item_no", "answer", *(text for text, _ in EDMONDSON_ITEMS)}
    assert [c for c in look["columns"] if c.split(".")[-1] in respondent_columns] == []
    # No respondent's row under another name either: no response id in any text column of any table.
    assert look["tables_searched"] > 10 and look["tables_holding_response_ids"] == {}

    # The same look finds them in the restricted file (the quarantine's inside its raw rows), private.
    restricted = warehouse.parent / "restricted" / "warehouse.restricted.duckdb"
    assert sorted(analyst_look(restricted, response_ids)["tables_holding_response_ids"]) == [
        '"main"."stg_survey__responses"', '"main"."survey__responses"', '"main"."survey__responses_quarantine"',
        '"main"."survey__wave_members"']
    assert restricted.stat().st_mode & 0o777 == 0o600 and restricted.parent.stat().st_mode & 0o777 == 0o700
    print(f"the warehouse file alone: {len(look['columns'])} columns, the text of {look['tables_searched']} tables "
          f"searched for {len(response_ids)} response ids: none found; the restricted file holds them, mode 600")


@pytest.mark.slow
def test_the_report_reads_the_warehouse_file_alone(nightly, tmp_path):
    _, _, _, warehouse = nightly
    # The warehouse file alone, and a restricted file in a folder that does not exist:
    # attaching it would fail the step.
    alone = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, alone)
    nowhere = tmp_path / "no-such-folder" / "restricted.duckdb"
    result = dg.materialize([cio_report], resources={
        "duckdb": WarehouseResource(database=str(alone), restricted_database=str(nowhere)),
        "report_folder": ReportFolderResource(path=str(tmp_path / "report"))})
    assert result.success
    assert (tmp_path / "report" / "psafe_report.html").is_file() and not nowhere.parent.exists()


@pytest.mark.slow
def test_no_published_cell_has_fewer_than_five_respondents(nightly):
    _, result, conn, _ = nightly
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "anonymity_holds"]
    assert check.passed and check.metadata["respondent_columns_outside_restricted"].value == []
    assert conn.sql("select min(n_respondents) from marts.fct_team_survey_waves").fetchone()[0] >= 5
    assert conn.sql("select count(*) from marts.fct_team_survey_waves where is_suppressed "
                    "and (n_respondents is not null or score_mean is not null or rwg_j is not null)").fetchone()[0] == 0
    assert conn.sql("select min(safety_n_respondents) from marts.mart_team_month").fetchone()[0] >= 5


@pytest.mark.slow
def test_subtracting_published_cells_from_wave_totals_recovers_no_suppressed_cell(nightly):
    _, _, conn, _ = nightly
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
    _, result, conn, _ = nightly
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
    _, _, conn, _ = nightly
    waves = conn.sql("select cronbach_alpha, icc1, icc2, n_teams, n_teams_published from marts.fct_survey_waves "
                     "where scale = 'psychological_safety'").fetchall()
    assert len(waves) == 4
    for alpha, icc1, icc2, n_teams, published in waves:
        assert 0.5 < alpha < 1 and 0 < icc1 < icc2 < 1 and n_teams == 12 and published <= 12
    rwg = conn.sql("select min(rwg_j), max(rwg_j) from marts.fct_team_survey_waves").fetchone()
    assert 0.5 < rwg[0] <= rwg[1] <= 1


@pytest.mark.slow
def test_results_table_reports_every_kpi_and_warns_about_twelve_teams(nightly):
    _, _, conn, _ = nightly
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
    result = anonymity_holds(duckdb=WarehouseResource(database=str(path)))
    assert not result.passed
    assert result.metadata["published_under_5"].value == 1
    assert result.metadata["published_without_spread"].value == 1
    assert result.metadata["teams_suppressed_in_some_scales_only"].value == 1
    assert result.metadata["waves_with_one_suppressed_cell"].value == 2
    assert sorted(result.metadata["respondent_columns_outside_restricted"].value) == [
        "staging.answers.answer", "staging.answers.response_id"]


# --- Anonymity across nights (issue 15) ------------------------------------------------------
# Three nights of the survey steps of the pipeline (landing load, dbt staging, the survey
# asset) on a small organisation, and the attacks of the issue against what they publish: the
# two-night differencing attack (a late response and a team that answers late change the
# figures a per-snapshot pipeline would publish the next night), the wave-total attack (the
# wave total minus the published cells) and the count-bounds attack (the pooled size of the
# suppressed cells, their published reasons and the HR headcounts). Each attack is first shown
# to work against what a pipeline deciding suppression afresh every night would publish.

Q1, Q2 = date(2025, 1, 1), date(2025, 4, 1)
NIGHTS = {"Q1 closed": date(2025, 4, 20), "late answers arrive": date(2025, 4, 21), "Q2 closed": date(2025, 7, 20)}
# Team: respondents in Q1 on the first night, HR headcount. A is below 5; B answered in full, so
# the headcounts pin A's size if B alone were its complement; G answers only after Q1 froze.
TEAMS = {"A": (4, 6), "B": (5, 5), "C": (6, 9), "D": (7, 10), "E": (8, 10), "F": (9, 12), "G": (0, 8)}


def published(conn) -> dict:
    """What an analyst reads of one night: the team cells and the wave totals."""
    return {"cells": conn.sql("select team, wave_quarter, scale, is_suppressed, suppression_reason, n_respondents, "
                              "score_mean from marts.fct_team_survey_waves").df(),
            "waves": conn.sql("select wave_quarter, scale, n_respondents, score_mean from marts.fct_survey_waves").df()}


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory, dbt):
    from conftest import Warehouse

    rng = np.random.default_rng(15)
    root = tmp_path_factory.mktemp("nights")
    landing = root / "landing"
    landing.mkdir()
    warehouse = Warehouse(root / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", [{"team": t, "source": s, "identifier": i} for t in TEAMS
                                            for s, i in (("survey_group", t), ("hr_org_unit", f"OU-{t}"))])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2025-{month:02d}-01", "employee_id": f"{team}-{i}", "org_unit": f"OU-{team}",
         "role": "engineer", "critical_role": "false"}
        for team, (_, headcount) in TEAMS.items() for month in range(1, 8) for i in range(headcount)])
    survey_file(landing / "q1.csv", [(f"{team}{i}", team, "2025-02-12 10:00:00")
                                     for team, (n, _) in TEAMS.items() for i in range(n)], rng)
    arrivals = {  # files that land before each night
        "late answers arrive": ("q1_late.csv", [("A-late", "A", "2025-03-28 16:00:00"),
                                                *[(f"G{i}", "G", "2025-03-20 11:00:00") for i in range(5)]]),
        "Q2 closed": ("q2.csv", [(f"{team}-q2-{i}", team, "2025-05-14 09:00:00") for team in TEAMS for i in range(6)]),
    }
    resources = {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
                 "duckdb": WarehouseResource(database=str(warehouse.path))}
    snapshots, responses = {}, {}
    for night, as_of in NIGHTS.items():
        if night in arrivals:
            name, rows = arrivals[night]
            survey_file(landing / name, rows, rng)
        warehouse.close()
        assert dg.materialize([survey_responses], resources=resources).success
        warehouse.build("+stg_survey__responses", "+int_team_month_headcount")
        assert dg.materialize([survey_waves], resources=resources, run_config={
            "ops": {"survey_waves": {"config": {"as_of": as_of.isoformat()}}}}).success
        snapshots[night] = published(warehouse.conn)
        responses[night] = warehouse.conn.sql(
            "select response_id, team, wave_quarter, item_set, item_no, score from restricted.stg_survey__responses"
        ).df().assign(wave_quarter=lambda f: pd.to_datetime(f["wave_quarter"]))
        headcounts = {(team, pd.Timestamp(quarter)): float(n) for team, quarter, n in warehouse.conn.sql(
            "select team, date_trunc('quarter', period_month)::date, max(headcount) "
            "from intermediate.int_team_month_headcount group by all").fetchall()}
    warehouse.close()
    return snapshots, responses, headcounts


def recomputed(answers: pd.DataFrame, headcounts=None) -> dict:
    """What a pipeline deciding suppression afresh on tonight's responses would publish."""
    cells, waves = survey_wave_tables(answers, 7, headcounts)
    return {"cells": cells, "waves": waves[["wave_quarter", "scale", "n_respondents", "score_mean"]]}


def _key(wave, scale) -> tuple:
    return pd.Timestamp(wave), scale


def _minus(big: tuple, small: tuple) -> tuple | None:
    """What one known group leaves after taking out another inside it (the same teams: the
    responses one night has more of)."""
    if small == big or not small[0] <= big[0] or big[1] <= small[1]:
        return None
    return big[0] - small[0] or big[0], big[1] - small[1], round(big[2] - small[2], 6)


def pools(snapshots: list[dict]) -> dict[tuple, set]:
    """Per wave and scale, every group of people whose size and score sum an attacker knows:
    each published cell, each wave total (its teams: every row of the wave, suppressed ones
    too), what taking published groups out of a known group leaves, on one night or across
    nights, and what a published group has beyond such a remainder (e.g. the late answers)."""
    published_groups: dict[tuple, set] = {}
    for snapshot in snapshots:
        cells = snapshot["cells"]
        for row in cells[~cells["is_suppressed"]].itertuples():
            published_groups.setdefault(_key(row.wave_quarter, row.scale), set()).add(
                (frozenset([row.team]), int(row.n_respondents), round(row.n_respondents * row.score_mean, 6)))
        for row in snapshot["waves"].dropna(subset=["n_respondents"]).itertuples():
            teams = frozenset(cells.loc[(pd.to_datetime(cells["wave_quarter"]) == pd.Timestamp(row.wave_quarter))
                                        & (cells["scale"] == row.scale), "team"])
            published_groups.setdefault(_key(row.wave_quarter, row.scale), set()).add(
                (teams, int(row.n_respondents), round(row.n_respondents * row.score_mean, 6)))
    known = {}
    for key, originals in published_groups.items():
        groups = set(originals)
        while True:
            derived = {d for big in groups for small in originals if (d := _minus(big, small))}
            if derived <= groups:
                break
            groups |= derived
        known[key] = groups | {d for big in originals for small in groups if (d := _minus(big, small))}
    return known


def hidden_cells(snapshots: list[dict]) -> dict[tuple, dict[str, str]]:
    """Per wave and scale, the teams any night suppressed, with the published reason."""
    hidden: dict[tuple, dict[str, str]] = {}
    for snapshot in snapshots:
        cells = snapshot["cells"]
        for row in cells[cells["is_suppressed"]].itertuples():
            hidden.setdefault(_key(row.wave_quarter, row.scale), {})[row.team] = row.suppression_reason
    return hidden


def differencing_leaks(snapshots: list[dict]) -> list[tuple]:
    """Groups the attacker isolates that suppression meant to hide: fewer than 5 people (one
    person's score among them), or a suppressed team's cell on its own."""
    hidden = hidden_cells(snapshots)
    return sorted((key, sorted(teams), n, total / n) for key, groups in pools(snapshots).items()
                  for teams, n, total in groups
                  if n < MIN_RESPONDENTS or (len(teams) == 1 and set(teams) <= set(hidden.get(key, {}))))


def count_bound_leaks(snapshots: list[dict], headcounts: dict) -> list[tuple]:
    """Suppressed cells under 5 whose size the attacker pins: for every group of suppressed
    teams with a known size, each team's feasible sizes (under 5 if its reason says so, at
    least 5 otherwise, at most its HR headcount) enumerated against the others'."""
    hidden, leaks = hidden_cells(snapshots), []
    for key, groups in pools(snapshots).items():
        reasons = hidden.get(key, {})
        for teams, n, _ in groups:
            if not teams <= set(reasons):
                continue
            bounds = {t: range(1, MIN_RESPONDENTS) if reasons[t] == PRIMARY
                      else range(MIN_RESPONDENTS, int(headcounts.get((t, key[0]), 10**3)) + 1) for t in teams}
            bounds = {t: [s for s in sizes if s <= headcounts.get((t, key[0]), np.inf)] for t, sizes in bounds.items()}
            for team in (t for t in teams if reasons[t] == PRIMARY):
                others = [bounds[t] for t in teams if t != team]
                sums = {0}
                for sizes in others:
                    sums = {s + size for s in sums for size in sizes if s + size <= n}
                feasible = [size for size in bounds[team] if n - size in sums]
                if len(feasible) == 1:
                    leaks.append((key, team, feasible[0]))
    return leaks


def test_each_night_freezes_what_it_publishes_and_late_answers_count_in_the_next_wave(three_nights):
    snapshots, responses, _ = three_nights
    first, second, third = (snapshots[night] for night in NIGHTS)
    for later in (second, third):
        for part in ("cells", "waves"):
            before = first[part].sort_values(list(first[part].columns[:3])).reset_index(drop=True)
            after = later[part][pd.to_datetime(later[part]["wave_quarter"]) == pd.Timestamp(Q1)]
            pd.testing.assert_frame_equal(after.sort_values(list(after.columns[:3])).reset_index(drop=True), before)
    assert set(pd.to_datetime(second["cells"]["wave_quarter"])) == {pd.Timestamp(Q1)}  # Q2 still open
    q2 = third["cells"][pd.to_datetime(third["cells"]["wave_quarter"]) == pd.Timestamp(Q2)]
    assert q2.set_index("team")["n_respondents"].to_dict() == {**dict.fromkeys(TEAMS, 6), "A": 7, "G": 11}
    assert "G" not in set(first["cells"]["team"])
    late = responses["Q2 closed"].query("response_id == 'A-late'")
    assert set(late["wave_quarter"]) == {pd.Timestamp(Q1)}  # submitted in Q1, counted in Q2


def test_the_two_night_differencing_attack_fails(three_nights):
    snapshots, responses, headcounts = three_nights
    first = snapshots["Q1 closed"]
    # Deciding afresh the next night publishes A (now 5) and its complements: the difference
    # gives A's four-person cell of the first night exactly, and the late person's score.
    afresh = recomputed(responses["late answers arrive"], headcounts)
    leaks = differencing_leaks([first, afresh])
    true_a = person_scores(responses["Q1 closed"]).query("team == 'A'")["person_score"]
    assert (_key(Q1, "psychological_safety"), ["A"], 4, pytest.approx(true_a.mean())) in leaks
    assert any(n == 1 for _, _, n, _ in leaks)
    # The pipeline's nights, every pair and all three at once.
    assert differencing_leaks(list(snapshots.values())) == []


def test_the_wave_total_attack_fails(three_nights):
    snapshots, responses, headcounts = three_nights
    first = snapshots["Q1 closed"]
    assert set(first["cells"].query("is_suppressed")["team"]) >= {"A", "B"}, "A and a complement are hidden"
    assert first["waves"]["n_respondents"].notna().all(), "the wave total is published for the attack to use"
    # Without complementary suppression the total minus the published cells is A's cell.
    alone = recomputed(responses["Q1 closed"], headcounts)
    truth = person_scores(responses["Q1 closed"]).groupby("team")["person_score"].agg(["size", "mean"])
    cells = alone["cells"].set_index("team")
    complements = cells.index[cells["is_suppressed"] & (cells["suppression_reason"] != PRIMARY)]
    cells.loc[complements, "is_suppressed"] = False
    cells.loc[complements, "n_respondents"] = truth.loc[complements, "size"].to_numpy()
    cells.loc[complements, "score_mean"] = truth.loc[complements, "mean"].to_numpy()
    [(_, teams, n, mean)] = differencing_leaks([{**alone, "cells": cells.reset_index()}])
    assert (teams, n, mean) == (["A"], 4, pytest.approx(truth.loc["A", "mean"]))
    for snapshot in snapshots.values():
        assert differencing_leaks([snapshot]) == []


def test_the_count_bounds_attack_fails(three_nights):
    snapshots, responses, headcounts = three_nights
    # With B alone as A's complement, B's full headcount (5) pins A's size at 4.
    without_headcounts = recomputed(responses["Q1 closed"])
    assert set(without_headcounts["cells"].query("is_suppressed")["team"]) == {"A", "B"}
    assert (_key(Q1, "psychological_safety"), "A", 4) in count_bound_leaks([without_headcounts], headcounts)
    assert count_bound_leaks(list(snapshots.values()), headcounts) == []
