"""A team-map edit between nights keeps each team's survey history (fourth trial, D1): frozen
survey cells are never recomputed (anonymity), so each keeps the survey groups its team had
when it froze, and today's map attributes it by them (intermediate.int_team_survey_waves), as
incidents, tickets and headcount follow today's map. Renamed: the team keeps its waves; merged:
its past months get the respondent-weighted mean of both teams' cells; cells no team takes
(a split, or cells frozen before the groups were kept whose team was renamed) are named by the
asset check frozen_survey_cells_have_a_team. The nights run the survey steps and dbt as
tests/test_survey_privacy.py's three_nights fixture does."""

from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from survey_exports import survey_file

from assets.landing.assets import survey_responses
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.resource import LandingFolderResource
from assets.landing.team_map import identifier_key
from assets.models.assets import survey_waves
from assets.models.design import SAFETY_SCORE
from assets.models.inputs import read_model_inputs
from assets.warehouse.resource import WarehouseResource

# Every test syncs from the sandbox or builds with dbt: left to `make test`, not the fast tier.
pytestmark = pytest.mark.slow

SAFETY = PSYCHOLOGICAL_SAFETY.key
# Respondents per team and quarter (every cell published: at least 5, the others too large for
# complementary suppression), HR headcount 12 each.
TEAMS = {"Payments": 6, "Search": 7, "Identity": 8, "Web": 9, "Infra": 10}
Q1, Q2 = date(2025, 1, 1), date(2025, 4, 1)
# Night 1 freezes Q1 (it closes 14 days after its quarter); night 2, after the map edit, Q2.
NIGHTS = (date(2025, 4, 20), date(2025, 7, 20))
RENAMED = "Payments & Risk"


def team_map(teams: dict[str, list[str]]) -> list[dict]:
    """raw.config__team_map rows: each team with the survey groups and org units of the teams listed."""
    return [{"team": team, "source": source, "identifier": identifier} for team, groups in teams.items()
            for group in groups for source, identifier in (("survey_group", group), ("hr_org_unit", f"OU-{group}"))]


def run_night(warehouse, resources, as_of: date) -> None:
    """One night's survey steps and dbt: load the exports, stage, freeze the waves that closed,
    build the marts up to mart_team_month."""
    warehouse.close()
    assert dg.materialize([survey_responses], resources=resources).success
    warehouse.build("+stg_survey__responses", "+int_team_month_headcount")
    assert dg.materialize([survey_waves], resources=resources, run_config={
        "ops": {"survey_waves": {"config": {"as_of": as_of.isoformat()}}}}).success
    warehouse.build_team_month()


def frozen_cells(conn) -> pd.DataFrame:
    return conn.sql("select team, wave_quarter, scale, is_suppressed, n_respondents, score_mean, score_sd, rwg_j "
                    "from marts.fct_team_survey_waves order by all").df()


def two_nights(root, dbt, edited_map: dict[str, list[str]], before_groups_were_kept: bool = False) -> dict:
    """Night 1 on the map of TEAMS, then ``edited_map`` (team -> survey groups, each group with
    its org unit), night 2. ``before_groups_were_kept``: night 1's cells lose their survey_groups
    column, as a warehouse frozen by the version before."""
    from conftest import Warehouse

    rng = np.random.default_rng(4)
    landing = root / "landing"
    landing.mkdir()
    warehouse = Warehouse(root / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", team_map({team: [team] for team in TEAMS}))
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2025-{month:02d}-01", "employee_id": f"{team}-{i}", "org_unit": f"OU-{team}",
         "role": "engineer", "critical_role": "false"}
        for team in TEAMS for month in range(1, 10) for i in range(12)])
    for quarter, day in ((Q1, "2025-02-12 10:00:00"), (Q2, "2025-05-14 10:00:00")):
        survey_file(landing / f"{quarter:%Y-%m}.csv", [(f"{team}-{quarter:%m}-{i}", team, day)
                                                       for team, n in TEAMS.items() for i in range(n)], rng)
    resources = {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
                 "duckdb": WarehouseResource(database=str(warehouse.path))}
    run_night(warehouse, resources, NIGHTS[0])
    first = frozen_cells(warehouse.conn)
    if before_groups_were_kept:
        warehouse.conn.execute("alter table marts.fct_team_survey_waves drop column survey_groups")
    warehouse.raw_rows("config__team_map", team_map(edited_map))
    run_night(warehouse, resources, NIGHTS[1])
    conn = warehouse.conn
    result = {
        "first": first,
        "second": frozen_cells(conn),
        "groups": {(row["team"], row["wave_quarter"]): row.get("survey_groups")
                   for row in conn.sql("select * from marts.fct_team_survey_waves").pl().to_dicts()},
        "scores": conn.sql("select team, period_month, wave_quarter, n_respondents, score_lagged "
                           f"from marts.fct_team_month_survey_scores where scale = '{SAFETY}'").df(),
        "mart": conn.sql("select team, period_month, safety_lagged from marts.mart_team_month").df(),
        "model_months": read_model_inputs(conn).months,
    }
    warehouse.close()
    return {**result, "warehouse": warehouse.path}


def unattributed_cells_check(warehouse_path) -> dg.AssetCheckResult:
    """The asset check frozen_survey_cells_have_a_team on the warehouse."""
    from assets.models.assets import frozen_survey_cells_have_a_team

    return frozen_survey_cells_have_a_team(duckdb=WarehouseResource(database=str(warehouse_path)))


def cell(cells: pd.DataFrame, team: str, wave: date) -> pd.Series:
    [row] = cells[(cells["team"] == team) & (pd.to_datetime(cells["wave_quarter"]) == pd.Timestamp(wave))
                  & (cells["scale"] == SAFETY)].to_dict("records")
    return pd.Series(row)


def months_of(frame: pd.DataFrame, team: str, first_month: int, last_month: int) -> pd.DataFrame:
    months = pd.to_datetime(frame["period_month"]).dt.month
    return frame[(frame["team"] == team) & months.between(first_month, last_month)]


def assert_frozen_figures_unchanged(nights: dict) -> None:
    """Night 2 wrote Q2's cells and never touched Q1's (the anonymity rule)."""
    second_q1 = nights["second"][pd.to_datetime(nights["second"]["wave_quarter"]) == pd.Timestamp(Q1)]
    pd.testing.assert_frame_equal(second_q1.reset_index(drop=True), nights["first"].reset_index(drop=True))


@pytest.fixture(scope="module")
def renamed(tmp_path_factory, dbt):
    return two_nights(tmp_path_factory.mktemp("renamed"), dbt,
                      {(RENAMED if team == "Payments" else team): [team] for team in TEAMS})


@pytest.fixture(scope="module")
def merged(tmp_path_factory, dbt):
    edited = {team: [team] for team in TEAMS if team != "Search"}
    edited["Identity"] = ["Identity", "Search"]
    return two_nights(tmp_path_factory.mktemp("merged"), dbt, edited)


def test_cells_keep_their_teams_survey_groups_as_the_map_compares_them(renamed):
    assert renamed["groups"][("Payments", Q1)] == [identifier_key("Payments")] == ["payments"]
    assert renamed["groups"][(RENAMED, Q2)] == ["payments"]


def test_a_renamed_team_keeps_its_survey_scores(renamed):
    assert_frozen_figures_unchanged(renamed)
    q1 = cell(renamed["first"], "Payments", Q1)
    q2 = cell(renamed["second"], RENAMED, Q2)
    carried = months_of(renamed["scores"], RENAMED, 4, 9).sort_values("period_month")
    assert list(carried["score_lagged"]) == pytest.approx([q1.score_mean] * 3 + [q2.score_mean] * 3)
    assert list(carried["n_respondents"]) == [q1.n_respondents] * 3 + [q2.n_respondents] * 3
    assert months_of(renamed["mart"], RENAMED, 4, 9)["safety_lagged"].notna().all()
    assert "Payments" not in set(renamed["scores"]["team"])
    check = unattributed_cells_check(renamed["warehouse"])
    assert check.passed, check.description


def test_the_models_read_a_renamed_teams_months_with_their_measurement_error(renamed):
    # The error of a team-wave mean is the wave's pooled within-team variance over the team's
    # respondents: the renamed team's months keep theirs (without it they left every model).
    months = months_of(renamed["model_months"], RENAMED, 4, 9).sort_values("period_month")
    assert len(months) == 6 and months[SAFETY_SCORE.error_var].notna().all()
    others = renamed["model_months"][renamed["model_months"]["team"] != RENAMED]
    q1 = months_of(others, "Search", 4, 6)[SAFETY_SCORE.error_var].iloc[0] * TEAMS["Search"]
    assert months[SAFETY_SCORE.error_var].iloc[0] == pytest.approx(q1 / TEAMS["Payments"])


def test_the_models_read_a_merged_teams_past_months_with_the_error_of_both_cells(merged):
    months = months_of(merged["model_months"], "Identity", 4, 6)
    web = months_of(merged["model_months"], "Web", 4, 6)[SAFETY_SCORE.error_var].iloc[0] * TEAMS["Web"]
    assert list(months[SAFETY_SCORE.error_var]) == pytest.approx([web / (TEAMS["Identity"] + TEAMS["Search"])] * 3)


def test_a_merged_teams_past_months_get_the_respondent_weighted_mean_of_both_cells(merged):
    assert_frozen_figures_unchanged(merged)
    identity, search = cell(merged["first"], "Identity", Q1), cell(merged["first"], "Search", Q1)
    weighted = ((identity.n_respondents * identity.score_mean + search.n_respondents * search.score_mean)
                / (identity.n_respondents + search.n_respondents))
    past = months_of(merged["scores"], "Identity", 4, 6)
    assert list(past["score_lagged"]) == pytest.approx([weighted] * 3)
    assert set(past["n_respondents"]) == {TEAMS["Identity"] + TEAMS["Search"]}
    assert list(months_of(merged["mart"], "Identity", 4, 6)["safety_lagged"]) == pytest.approx([weighted] * 3)
    # The wave frozen after the merge pools both groups in one cell.
    pooled = cell(merged["second"], "Identity", Q2)
    assert pooled.n_respondents == TEAMS["Identity"] + TEAMS["Search"]
    assert merged["groups"][("Identity", Q2)] == ["identity", "search"]
    assert list(months_of(merged["scores"], "Identity", 7, 9)["score_lagged"]) == pytest.approx([pooled.score_mean] * 3)
    check = unattributed_cells_check(merged["warehouse"])
    assert check.passed, check.description


def test_a_split_teams_frozen_cells_count_for_no_team_and_the_check_names_them(tmp_path, dbt):
    edited = {team: [team] for team in TEAMS if team != "Web"}
    edited["Infra"] = ["Infra", "Web"]
    # Night 1's Web cell has one group: moving it whole is a merge; a split needs a cell of two
    # groups, so night 2 splits the merged Infra (Infra + Web) back, after its Q2 cell froze.
    nights = two_nights(tmp_path, dbt, edited)
    assert nights["groups"][("Infra", Q2)] == ["infra", "web"]
    from conftest import Warehouse

    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", team_map({team: [team] for team in TEAMS}))
    warehouse.build_team_month()
    scores = warehouse.conn.sql("select team, period_month, score_lagged from marts.fct_team_month_survey_scores "
                                f"where scale = '{SAFETY}'").df()
    warehouse.close()
    check = unattributed_cells_check(warehouse.path)
    # Q2's pooled cell belongs to neither Infra nor Web: Q3 carries their Q1 cells forward.
    assert list(months_of(scores, "Infra", 7, 9)["score_lagged"]) == pytest.approx(
        [cell(nights["first"], "Infra", Q1).score_mean] * 3)
    assert not check.passed
    assert check.metadata["cells_without_team"].value == [
        "Infra 2025-04-01 (survey group infra: Infra, survey group web: Web)"]


def test_cells_frozen_before_groups_were_kept_count_by_name_and_a_rename_is_named(tmp_path, dbt):
    nights = two_nights(tmp_path, dbt, {(RENAMED if team == "Payments" else team): [team] for team in TEAMS},
                        before_groups_were_kept=True)
    # The column is added, every cell of night 1 kept (groups null) and night 2's have theirs.
    assert_frozen_figures_unchanged(nights)
    assert nights["groups"][("Payments", Q1)] is None and nights["groups"][(RENAMED, Q2)] == ["payments"]
    assert list(months_of(nights["scores"], "Search", 4, 6)["score_lagged"]) == pytest.approx(
        [cell(nights["first"], "Search", Q1).score_mean] * 3)
    assert months_of(nights["scores"], RENAMED, 4, 6).empty
    check = unattributed_cells_check(nights["warehouse"])
    assert not check.passed
    assert check.metadata["cells_without_team"].value == [
        "Payments 2025-01-01 (frozen before survey groups were kept; no team is called Payments now)"]


NAMES = ["Payments", "  PAY\u00a0 ments ", "Pay\u200bments", "Cafe\u0301", "Caf\u00e9", "ΟΔΟΣ", "İstanbul",
         "A\tB\u3000C\x1cD\x85E\u2028F", "STRASSE ß", "ǅ"]


def test_the_sql_survey_group_key_reads_names_as_the_team_map_compares_them(tmp_path, dbt):
    from conftest import Warehouse

    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    compiled = warehouse.run("compile", "--inline", "select {{ survey_group_key('name') }} as key from names"
                             ).result.results[0].node.compiled_code
    conn = duckdb.connect()
    conn.execute("create table names (name varchar)")
    conn.executemany("insert into names values (?)", [[name] for name in NAMES + [identifier_key(n) for n in NAMES]])
    keys = [key for (key,) in conn.sql(compiled).fetchall()]
    by_name, by_stored_key = keys[:len(NAMES)], keys[len(NAMES):]
    # A key identifier_key stored and the name it came from read alike; names alike by
    # identifier_key are alike here, others are not.
    assert by_name == by_stored_key
    for a, b in zip(NAMES, by_name, strict=True):
        for c, d in zip(NAMES, by_name, strict=True):
            assert (identifier_key(a) == identifier_key(c)) == (b == d), (a, c)


def test_the_attribution_rule_has_a_dbt_unit_test_per_case_and_they_pass(tmp_path, dbt):
    from conftest import Warehouse

    cases = {t.name for t in dbt.manifest.unit_tests.values() if t.model == "int_team_survey_waves"}
    assert cases == {"renamed_team_keeps_its_frozen_waves", "merged_team_takes_the_weighted_mean_of_its_teams_cells",
                     "merged_team_with_a_suppressed_cell_has_no_figures_for_that_wave",
                     "cells_whose_groups_are_split_or_unclaimed_count_for_no_team",
                     "cells_frozen_without_groups_count_for_the_team_of_their_name"}
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.build("+int_team_survey_waves", "--exclude", "stg_survey__responses")
    results = [r for r in warehouse.run("test", "--select", "int_team_survey_waves,test_type:unit").result.results
               if r.node.resource_type == "unit_test"]
    assert sorted(r.node.name for r in results) == sorted(cases)
    assert all(r.status == "pass" for r in results), [(r.node.name, r.message) for r in results]
