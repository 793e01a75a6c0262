"""A survey file's response count is a team's respondent count when the tool exports one file
per team (a Google Form or a Microsoft Form per team, a Qualtrics export filtered per group), so
it is kept from everything analysts read, as the team's suppressed cell is (a suspected leak of
an adversarial trial, confirmed here first). The manifest rows of survey files (checksum, rows,
responses, waves), which the shrinkage check compares, live in the restricted file; the
warehouse file, the asset's metadata and the run's log never show a survey file's count, or a
file's count in a wave, below MIN_RESPONDENTS ("fewer than 5"). HR files' manifest rows stay in
the warehouse, with their counts.
"""
import csv
import io
import re
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
import numpy as np
import pytest
from survey_exports import survey_file

from assets.landing.assets import survey_responses
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import SurveyExportError, read_survey_exports
from assets.models.assets import survey_waves
from assets.models.psychometrics import MIN_RESPONDENTS
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.restricted import read_only_connection

FEWER = f"fewer than {MIN_RESPONDENTS}"
# One export per team: Tiny's wave has fewer respondents than MIN_RESPONDENTS.
TEAMS = {"Payments": 6, "Search": 7, "Identity": 8, "Web": 9, "Tiny": MIN_RESPONDENTS - 2}
Q1_DAY = "2025-02-12 10:00:00"
ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]


def team_file(landing, team: str, n: int, day: str = Q1_DAY, seed: int = 0) -> None:
    survey_file(landing / f"{team.lower()}.csv", [(f"{team}-{i}", team, day) for i in range(n)],
                np.random.default_rng(seed))


def one_file_per_team(landing) -> None:
    for seed, (team, n) in enumerate(TEAMS.items()):
        team_file(landing, team, n, seed=seed)


def resources(landing, warehouse) -> dict:
    return {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
            "duckdb": WarehouseResource(database=str(warehouse))}


def load(landing, warehouse, accept=()) -> dg.ExecuteInProcessResult:
    return dg.materialize([survey_responses], raise_on_error=False, resources=resources(landing, warehouse),
                          run_config={"ops": {survey_responses.node_def.name: {
                              "config": {"accept_shrunk_exports": list(accept)}}}})


def failure(result: dg.ExecuteInProcessResult) -> str:
    return result.get_step_failure_events()[0].event_specific_data.user_failure_data.description


def tables_mentioning(path, text: str) -> list[str]:
    """The tables of the DuckDB file at ``path``, opened alone as an analyst opens the warehouse,
    with a row whose text holds ``text``."""
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute("select schema_name, table_name from duckdb_tables() "
                              "where database_name = current_database()").fetchall()
        return [f"{schema}.{table}" for schema, table in tables if conn.execute(
            f'select count(*) from "{schema}"."{table}" as t where t::varchar like ?', [f"%{text}%"]).fetchone()[0]]


@pytest.mark.slow
def test_a_small_teams_file_count_reaches_neither_the_warehouse_nor_the_metadata(tmp_path, dbt):
    from conftest import Warehouse

    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", [
        {"team": team, "source": source, "identifier": identifier} for team in TEAMS
        for source, identifier in (("survey_group", team), ("hr_org_unit", f"OU-{team}"))])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2025-{month:02d}-01", "employee_id": f"{team}-{i}", "org_unit": f"OU-{team}",
         "role": "engineer", "critical_role": "false"} for team in TEAMS for month in (1, 2, 3, 4) for i in range(12)])
    one_file_per_team(landing)
    warehouse.close()
    loaded = load(landing, warehouse.path)
    assert loaded.success
    warehouse.build("+stg_survey__responses", "+int_team_month_headcount")
    assert dg.materialize([survey_waves], resources=resources(landing, warehouse.path), run_config={
        "ops": {"survey_waves": {"config": {"as_of": "2025-04-20"}}}}).success
    # The disclosure rule hides Tiny's wave: no n, no mean.
    with duckdb.connect(str(warehouse.path), read_only=True) as conn:
        [(suppressed, n)] = conn.execute("select is_suppressed, n_respondents from marts.fct_team_survey_waves "
                                         "where team = 'Tiny' and wave_quarter = ?", [date(2025, 1, 1)]).fetchall()
    assert suppressed and n is None

    # An analyst's look at the warehouse file finds no table naming Tiny's export (the manifest
    # held its responses); the restricted file keeps them for the shrinkage check.
    assert tables_mentioning(warehouse.path, "tiny.csv") == []
    with read_only_connection(str(warehouse.path)) as conn:
        facts = dict(conn.execute("select file, units from restricted.landing__files").fetchall())
    assert facts == {f"{team.lower()}.csv": n for team, n in TEAMS.items()}

    # The materialization's metadata says "fewer than 5" for Tiny's file; the total is across files.
    metadata = loaded.asset_materializations_for_node(survey_responses.node_def.name)[0].metadata
    files = metadata["files"].value
    assert files["tiny.csv"]["responses"] == FEWER
    assert {name: entry["responses"] for name, entry in files.items() if name != "tiny.csv"} == {
        f"{team.lower()}.csv": n for team, n in TEAMS.items() if team != "Tiny"}
    assert metadata["responses"].value == sum(TEAMS.values())


@pytest.mark.slow
def test_a_shrunk_small_file_stops_the_load_without_showing_its_counts(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    landing.mkdir()
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema raw")
        conn.execute("create table raw.config__team_map as select unnest(?) as team, 'survey_group' as source, "
                     "unnest(?) as identifier", [list(TEAMS), list(TEAMS)])
    one_file_per_team(landing)
    assert load(landing, warehouse).success
    # Tiny's form re-exported after a response was deleted: the load stops naming the file and
    # what shrank, as before, but not how many responses the team had or has.
    team_file(landing, "Tiny", TEAMS["Tiny"] - 1, seed=4)
    shrunk = load(landing, warehouse)
    assert not shrunk.success
    message = failure(shrunk)
    assert "tiny.csv shrank since it was last loaded" in message and "accept_shrunk_exports" in message
    assert f"rows {FEWER} -> {FEWER}; responses {FEWER} -> {FEWER}" in message
    assert not re.search(r"\d+ -> \d+", message), message
    # The file gone: named, with its waves, not its counts.
    (landing / "tiny.csv").unlink()
    gone = failure(load(landing, warehouse))
    assert f"tiny.csv was loaded before ({FEWER} rows, {FEWER} responses, waves 2025-Q1)" in gone
    # Accepted by name, the load goes on, and the restricted file's manifest follows.
    team_file(landing, "Tiny", TEAMS["Tiny"] - 1, seed=4)
    assert load(landing, warehouse, accept=["tiny.csv"]).success
    with read_only_connection(str(warehouse)) as conn:
        assert conn.execute("select units from restricted.landing__files where file = 'tiny.csv'").fetchall() == [
            (TEAMS["Tiny"] - 1,)]


def test_survey_rows_an_earlier_release_kept_in_the_warehouse_move_out_of_its_bytes(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    landing.mkdir()
    one_file_per_team(landing)
    loaded_at = datetime(2025, 4, 1, tzinfo=UTC)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema raw")
        conn.execute("create table raw.config__team_map as select unnest(?) as team, 'survey_group' as source, "
                     "unnest(?) as identifier", [list(TEAMS), list(TEAMS)])
        # raw.landing__files as the release before wrote it: survey files beside an HR roster.
        conn.execute("create table raw.landing__files (file varchar, kind varchar, preset varchar, sha256 varchar, "
                     "data_rows bigint, units bigint, periods varchar, loaded_at timestamptz)")
        conn.executemany("insert into raw.landing__files values (?, ?, ?, ?, ?, ?, ?, ?)", [
            *[(f"{team.lower()}.csv", "survey", "generic", "old", n, n, '["2025-Q1"]', loaded_at)
              for team, n in TEAMS.items()],
            ("roster.csv", "hr", "bamboohr", "old", 40, 40, '["2025-01", "2025-02"]', loaded_at)])
    # Its survey rows still stop a load whose file lost a response.
    team_file(landing, "Tiny", TEAMS["Tiny"] - 1, seed=4)
    assert "tiny.csv shrank since it was last loaded" in failure(load(landing, warehouse))
    team_file(landing, "Tiny", TEAMS["Tiny"], seed=4)
    assert load(landing, warehouse).success
    # Moved to the restricted file; the HR roster's row stays where the HR load reads it.
    with read_only_connection(str(warehouse)) as conn:
        assert conn.execute("select file, kind, units from raw.landing__files").fetchall() == [
            ("roster.csv", "hr", 40)]
        assert conn.execute("select count(*) from restricted.landing__files where kind = 'survey'").fetchone()[0] == 5
    # The next connection rewrites the warehouse file: the deleted rows' bytes are gone too.
    with WarehouseResource(database=str(warehouse)).get_connection() as conn:
        conn.execute("select 1")
    assert b"tiny.csv" not in warehouse.read_bytes()
    assert b"roster.csv" in warehouse.read_bytes()


def straddling_export(path, before: int, after: int):
    """One team's export of a campaign open across 31 March: ``before`` responses in late
    March, ``after`` in early April."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["response_id", "submitted_at", "team", *ITEMS])
    days = [f"2025-03-{25 + i % 6:02d} 10:00:00" for i in range(before)] + [
        f"2025-04-{1 + i % 6:02d} 10:00:00" for i in range(after)]
    for i, day in enumerate(days):
        level = 2 + i % 5
        writer.writerow([f"R{i}", day, "Tiny", *[8 - level if item.reverse_keyed else level
                                                 for item in PSYCHOLOGICAL_SAFETY.items]])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_a_campaign_warning_names_a_small_side_of_one_teams_file_without_its_count(tmp_path):
    # Tiny's April stragglers are Tiny's whole 2025-Q2 wave: the warning says "fewer than 5".
    path = straddling_export(tmp_path / "tiny.csv", 7, 2)
    load = read_survey_exports([path], {"Tiny"}, datetime(2025, 7, 20, tzinfo=UTC))
    [warning] = [w for w in load.warnings if "straddle" in w]
    assert f"7 in 2025-Q1 and {FEWER} in 2025-Q2, the {FEWER} of 2025-Q2 all within 14 days" in warning
    assert not re.search(r"\b2 (in|of) 2025-Q2|those 2 ", warning), warning


def test_a_wave_setting_refused_does_not_count_a_small_files_responses(tmp_path):
    path = straddling_export(tmp_path / "tiny.csv", 3, 0)
    with open(path, "a", encoding="utf-8") as fh:  # one response half a year away
        fh.write("R9,2025-08-10 10:00:00,Tiny," + ",".join(["4"] * len(ITEMS)) + "\n")
    (tmp_path / "export_mapping.yml").write_text('files:\n  - match: "tiny.csv"\n    wave: 2025-Q1\n')
    settings = read_mapping(tmp_path).settings(path.name, "survey")
    with pytest.raises(SurveyExportError) as stopped:
        read_survey_exports([path], {"Tiny"}, datetime(2025, 9, 1, tzinfo=UTC), settings=settings)
    message = str(stopped.value)
    assert f"but {FEWER} of its {FEWER} responses were submitted more than a quarter away ({FEWER} in 2025-Q3)" \
        in message
    assert not re.search(r"\b[14] (of|in) ", message), message


def test_a_small_workbooks_date_cells_are_not_counted_in_its_metadata(tmp_path):
    # One date cell per response: a team's workbook of 3 responses says "fewer than 5 date cells".
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["response_id", "submitted_at", "team", *ITEMS])
    for i in range(TEAMS["Tiny"]):
        sheet.append([f"R{i}", datetime(2025, 2, 10 + i, 9), "Tiny", *[4] * len(ITEMS)])
    book.save(tmp_path / "tiny.xlsx")
    load = read_survey_exports([tmp_path / "tiny.xlsx"], {"Tiny"}, datetime(2025, 7, 20, tzinfo=UTC))
    assert load.responses == TEAMS["Tiny"]
    assert load.files[0].diagnosis["date_cells"] == f"{FEWER} date cells"
