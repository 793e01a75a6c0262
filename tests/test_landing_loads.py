"""The landing assets through Dagster on a real DuckDB warehouse: several exports load
together, a file that lost rows blocks the load and the previous load stays (until a run
accepts it), a file still being copied keeps its previous rows, and HR files of both kinds
reach the raw tables with their quarantine."""

import csv
import io
import os

import dagster as dg
import duckdb
import numpy as np
import pytest
import yaml
from conftest import landing_beside_warehouse

from assets.landing.assets import hr_exports, survey_responses
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.resource import LandingFolderResource
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.restricted import read_only_connection

ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]
REVERSED = {item.number for item in PSYCHOLOGICAL_SAFETY.items if item.reverse_keyed}


def csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def finished(path):
    """Make ``path`` look like a copy that finished an hour ago."""
    os.utime(path, (path.stat().st_mtime - 3600, path.stat().st_mtime - 3600))


def survey_rows(wave_month: int, n: int, prefix: str) -> list[list]:
    return [[f"{prefix}{i}", f"2025-{wave_month:02d}-10 09:00:00", "Payments",
             *[8 - (1 + i % 7) if number in REVERSED else 1 + i % 7 for number in range(1, 8)]] for i in range(n)]


@pytest.fixture
def folders(tmp_path):
    return landing_beside_warehouse(tmp_path, {"team": ["Payments", "Payments"],
                                               "source": ["survey_group", "hr_org_unit"],
                                               "identifier": ["Payments", "OU-1"]})


def load(asset, landing, warehouse, accept=(), run_config=None):
    return dg.materialize(
        [asset], raise_on_error=False,
        resources={"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt"),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        run_config=run_config or {"ops": {asset.node_def.name: {"config": {"accept_shrunk_exports": list(accept)}}}},
    )


def responses(warehouse) -> dict[str, int]:
    with read_only_connection(str(warehouse)) as conn:
        return dict(conn.execute("select source_file, count(distinct response_id) from restricted.survey__responses "
                                 "group by 1").fetchall())


def test_waves_add_up_a_shrunk_file_blocks_and_a_file_being_copied_keeps_its_rows(folders):
    landing, warehouse = folders
    header = ["response_id", "submitted_at", "team", *ITEMS]
    wave1, wave2 = landing / "wave1.csv", landing / "wave2.csv"
    wave1.write_text(csv_text([header, *survey_rows(2, 30, "A")]))
    finished(wave1)
    assert load(survey_responses, landing, warehouse).success
    wave2.write_text(csv_text([header, *survey_rows(5, 20, "B")]))
    finished(wave2)
    assert load(survey_responses, landing, warehouse).success
    assert responses(warehouse) == {"wave1.csv": 30, "wave2.csv": 20}

    # A copy cut at a line end: a valid but shorter file. The load stops, saying what shrank.
    wave1.write_text(csv_text([header, *survey_rows(2, 18, "A")]))
    finished(wave1)
    blocked = load(survey_responses, landing, warehouse)
    assert not blocked.success
    message = blocked.get_step_failure_events()[0].event_specific_data.user_failure_data.description
    assert "wave1.csv shrank since it was last loaded (rows 30 -> 18; responses 30 -> 18)" in message
    assert "accept_shrunk_exports" in message
    assert responses(warehouse) == {"wave1.csv": 30, "wave2.csv": 20}

    # Being copied again (changed a moment ago): not read, its previous rows stay.
    wave1.write_text(csv_text([header, *survey_rows(2, 31, "A")]))
    assert load(survey_responses, landing, warehouse).success
    assert responses(warehouse) == {"wave1.csv": 30, "wave2.csv": 20}
    finished(wave1)
    assert load(survey_responses, landing, warehouse).success
    assert responses(warehouse) == {"wave1.csv": 31, "wave2.csv": 20}

    # Retiring a wave file on purpose is accepted for one run by name, with the run config the
    # message gives, as written (the Launchpad's YAML reads its JSON).
    wave2.unlink()
    refused = load(survey_responses, landing, warehouse)
    message = refused.get_step_failure_events()[0].event_specific_data.user_failure_data.description
    run_config = yaml.safe_load(message.split("with the run config ", 1)[1])
    assert run_config["ops"][survey_responses.node_def.name]["config"]["accept_shrunk_exports"] == ["wave2.csv"]
    assert load(survey_responses, landing, warehouse, run_config=run_config).success
    assert responses(warehouse) == {"wave1.csv": 31}


def test_a_negative_keying_finding_chance_explains_loads_and_the_check_still_shows_it(folders):
    """Sixth trial, S6: in a wave of 12, a reverse-keyed item answered at random correlates a
    little below 0 with the rest (r = -0.005): chance explains it, so the wave loads (it was
    held back, with advice that would turn correctly keyed answers round), and keying_check
    warns listing it under loaded_doubtful, as a tool's reversal cannot always be told from
    chance in so small a wave."""
    landing, warehouse = folders
    rng = np.random.default_rng(1)
    rows = [["response_id", "submitted_at", "team", *ITEMS]]
    for i in range(12):
        answers = np.clip(1 + i % 7 + rng.integers(-1, 2, size=7), 1, 7)
        answers[2] = rng.integers(1, 8)  # item 3 (reverse-keyed) at random
        rows.append([f"R{i}", "2025-02-10", "Payments",
                     *[8 - a if PSYCHOLOGICAL_SAFETY.item(n).reverse_keyed else a for n, a in enumerate(answers, 1)]])
    wave = landing / "wave.csv"
    wave.write_text(csv_text(rows))
    finished(wave)
    result = load(survey_responses, landing, warehouse)
    assert result.success and responses(warehouse) == {"wave.csv": 12}
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("keying check doubtful for psychological safety in wave 2025-Q1")
    assert check.metadata["held_back"].value == []
    [doubt] = check.metadata["loaded_doubtful"].value
    assert [(i["item"], i["p"] > 0.05) for i in doubt["negative_reverse_keyed_items"]] == [(3, True)]


def test_responses_quarantined_by_a_team_map_change_do_not_make_the_file_shrink(folders):
    landing, warehouse = folders
    header = ["response_id", "submitted_at", "team", *ITEMS]
    wave = landing / "wave.csv"
    wave.write_text(csv_text([header, *survey_rows(2, 30, "A"), *[[f"S{i}", *row[1:2], "Search", *row[3:]]
                                                                for i, row in enumerate(survey_rows(2, 6, "S"))]]))
    finished(wave)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("insert into raw.config__team_map values ('Search', 'survey_group', 'Search')")
    assert load(survey_responses, landing, warehouse).success
    # The Search team leaves the team map: its six responses are quarantined, the file is whole.
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("delete from raw.config__team_map where identifier = 'Search'")
    result = load(survey_responses, landing, warehouse)
    assert result.success
    assert responses(warehouse) == {"wave.csv": 30}


def test_a_roster_and_a_leavers_file_load_together_with_hashed_ids(folders):
    landing, warehouse = folders
    roster = landing / "bamboohr.csv"
    roster.write_text(csv_text([
        ["Employee #", "Department", "Job Title", "Hire Date", "Termination Date", "Termination Type"],
        ["7", "OU-1", "SRE", "2023-06-01", "", ""],
        ["8", "ou-1", "SRE", "2023-06-01", "2024-02-10", "Voluntary"],
        ["9", "OU-404", "SRE", "2023-06-01", "", ""],
    ]))
    leavers = landing / "hr_terminations.csv"
    leavers.write_text(csv_text([
        ["employee_id", "org_unit", "role", "critical_role", "termination_date", "voluntary"],
        ["E1", "OU-1", "sre", "maybe", "2024-03-04", "true"],
    ]))
    for path in (roster, leavers):
        finished(path)
    result = load(hr_exports, landing, warehouse)
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        months = conn.execute("select count(distinct snapshot_date) from raw.hr__headcount").fetchone()[0]
        leavers_loaded = conn.execute("select employee_id, voluntary from raw.hr__terminations").fetchall()
        roster_q = conn.execute("select reason, raw_row from quarantine.hr__headcount").fetchall()
        leaver_q = conn.execute("select reason, source_file from quarantine.hr__terminations").fetchall()
    hashed = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise
    assert months >= 24 and leavers_loaded == [(hashed("8"), "true")]
    [(reason, raw)] = roster_q
    assert reason.startswith("unknown team: org unit 'OU-404'") and hashed("9") in raw and '"9"' not in raw
    assert leaver_q[0][0].startswith("bad flag: critical_role 'maybe'") and leaver_q[0][1] == "hr_terminations.csv"


def test_an_hr_file_still_being_copied_keeps_its_previous_rows_and_the_rest_loads(folders):
    landing, warehouse = folders
    roster, leavers = landing / "bamboohr.csv", landing / "hr_terminations.csv"
    roster_header = ["Employee #", "Department", "Job Title", "Hire Date", "Termination Date", "Termination Type"]
    leavers_header = ["employee_id", "org_unit", "role", "critical_role", "termination_date", "voluntary"]
    roster.write_text(csv_text([roster_header, ["7", "OU-1", "SRE", "2023-06-01", "", ""]]))
    leavers.write_text(csv_text([leavers_header, ["E1", "OU-1", "sre", "maybe", "2024-03-04", "true"],
                                 ["E2", "OU-1", "sre", "false", "2024-04-04", "true"]]))
    for path in (roster, leavers):
        finished(path)
    assert load(hr_exports, landing, warehouse).success

    def tables() -> tuple[dict, list, list]:
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            employees = dict(conn.execute("select source_file, count(distinct employee_id) from raw.hr__headcount "
                                          "group by 1").fetchall())
            left = conn.execute("select source_file, termination_date from raw.hr__terminations").fetchall()
            bad = conn.execute("select source_file, split_part(reason, ':', 1) from quarantine.hr__terminations"
                               ).fetchall()
        return employees, left, bad

    before = tables()
    assert before == ({"bamboohr.csv": 1}, [("hr_terminations.csv", "2024-04-04")],
                      [("hr_terminations.csv", "bad flag")])
    # The leavers file is rewritten (a copy under way: changed a moment ago), the roster grows.
    leavers.write_text(csv_text([leavers_header, ["E1", "OU-1", "sre", "maybe", "2024-03-04", "true"],
                                 ["E2", "OU-1", "sre", "false", "2024-04-04", "true"],
                                 ["E3", "OU-1", "sre", "false", "2024-05-04", "true"]]))
    roster.write_text(csv_text([roster_header, ["7", "OU-1", "SRE", "2023-06-01", "", ""],
                                ["8", "OU-1", "SRE", "2023-06-01", "", ""]]))
    finished(roster)
    result = load(hr_exports, landing, warehouse)
    assert result.success
    employees, left, bad = tables()
    assert employees == {"bamboohr.csv": 2}  # the complete file loaded anew
    assert (left, bad) == before[1:]  # the file being copied kept its rows and its quarantine
    [terminations] = [e.materialization.metadata for e in result.get_asset_materialization_events()
                      if e.asset_key == dg.AssetKey(["raw", "hr__terminations"])]
    assert terminations["waiting_for_complete_copy"].value == ["hr_terminations.csv"]
    finished(leavers)
    assert load(hr_exports, landing, warehouse).success
    assert sorted(tables()[1]) == [("hr_terminations.csv", "2024-04-04"), ("hr_terminations.csv", "2024-05-04")]


def test_a_wave_failing_the_keying_check_is_held_back_alone_naming_its_items(folders):
    landing, warehouse = folders
    header = ["response_id", "submitted_at", "team", *ITEMS]
    wave1, wave2 = landing / "wave1.csv", landing / "wave2.csv"
    wave1.write_text(csv_text([header, *survey_rows(2, 30, "A")]))
    wave2.write_text(csv_text([header, *survey_rows(5, 20, "B")]))
    for path in (wave1, wave2):
        finished(path)
    assert load(survey_responses, landing, warehouse).success
    # The second wave's export comes back with the reverse-keyed items already reversed by the
    # tool (every item at the respondent's level), and one more respondent; the first wave grows.
    reversed_by_tool = [[f"B{i}", "2025-05-10 09:00:00", "Payments", *[1 + i % 7] * 7] for i in range(21)]
    wave2.write_text(csv_text([header, *reversed_by_tool]))
    wave1.write_text(csv_text([header, *survey_rows(2, 32, "A")]))
    for path in (wave1, wave2):
        finished(path)
    result = load(survey_responses, landing, warehouse)
    assert result.success
    assert responses(warehouse) == {"wave1.csv": 32, "wave2.csv": 20}  # wave 2's previous load stayed
    with read_only_connection(str(warehouse)) as conn:
        previous = conn.execute("select count(*) from restricted.survey__responses where response_id = 'B0' "
                                "and score <> answer").fetchone()[0]
    assert previous == 3  # the previous load's rows, scored as before (items 1, 3, 5 reversed)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "keying_check" and not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "psychological safety in wave 2025-Q2" in check.description
    assert all(f"item {n} ({ITEMS[n - 1]!r}" in check.description for n in (1, 3, 5))
    [held] = check.metadata["held_back"].value
    assert (held["scale"], held["wave"], [i["item"] for i in held["negative_reverse_keyed_items"]]) == (
        "psychological_safety", "2025-Q2", [1, 3, 5])
    # Once the mapping says the tool reversed them, the wave loads.
    (landing / "export_mapping.yml").write_text(
        "files:\n  - match: wave2.csv\n    kind: survey\n    item_sets:\n"
        "      psychological_safety: {already_reversed: [1, 3, 5]}\n")
    result = load(survey_responses, landing, warehouse)
    assert result.success and result.get_asset_check_evaluations()[0].passed
    assert responses(warehouse) == {"wave1.csv": 32, "wave2.csv": 21}


def test_files_on_different_scales_are_each_scored_on_their_own_scale(folders):
    landing, warehouse = folders
    header = ["response_id", "submitted_at", "team", *ITEMS]
    # A 5-point wave (named in the mapping file) beside a 7-point one (the default).
    five = [[f"F{i}", "2025-02-10 09:00:00", "Payments",
             *[6 - (1 + i % 5) if n in REVERSED else 1 + i % 5 for n in range(1, 8)]] for i in range(10)]
    (landing / "a_wave_5pt.csv").write_text(csv_text([header, *five]))
    (landing / "b_wave_7pt.csv").write_text(csv_text([header, *survey_rows(5, 10, "S")]))
    (landing / "export_mapping.yml").write_text('files:\n  - match: "a_wave_5pt.csv"\n    scale_points: 5\n')
    for path in landing.iterdir():
        finished(path)
    result = load(survey_responses, landing, warehouse)
    assert result.success
    with read_only_connection(str(warehouse)) as conn:
        scored = conn.execute("select source_file, min(scale_points), max(scale_points), min(score), max(score), "
                              "min(answer), max(answer) from restricted.survey__responses group by 1 order by 1"
                              ).fetchall()
    assert scored == [("a_wave_5pt.csv", 5, 5, 1, 5, 1, 5), ("b_wave_7pt.csv", 7, 7, 1, 7, 1, 7)]
    metadata = result.asset_materializations_for_node("restricted__survey__responses")[0].metadata
    files = metadata["files"].value
    assert (files["a_wave_5pt.csv"]["scale_points"], files["b_wave_7pt.csv"]["scale_points"]) == (5, 7)
