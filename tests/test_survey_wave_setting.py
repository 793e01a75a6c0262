"""Which wave a survey response counts in (fifth adversarial trial, T4: /tmp/adv5_time/repro/
r4_wave_straddles_quarter.py).

A campaign open 24 March to 7 April, its times written in Berlin time without an offset, used
to become two waves, each published: the April stragglers were their teams' Q2 wave alone, and
nothing said so. A time of day just after midnight on 1 April joined Q1 (31 March 22:30 UTC)
while the date 1 April alone joined Q2. Now a files: entry's ``wave`` puts a campaign's export in
one wave, a file straddling a quarter end without it warns naming the file, the counts and the
setting, and a response's quarter is that of the day it was submitted in the file's time zone.
Warehouses loaded before the wave was stored keep their rows, response ids and frozen waves.
"""

import csv
import io
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.landing.assets import survey_responses
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import MappingError, read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import SurveyExportError, read_survey_exports
from assets.models.assets import survey_waves
from assets.models.psychometrics import MIN_RESPONDENTS
from assets.warehouse.resource import WarehouseResource

NOW = datetime(2025, 7, 20, tzinfo=UTC)
ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]
REVERSED = {item.number for item in PSYCHOLOGICAL_SAFETY.items if item.reverse_keyed}
GROUPS = {"payments": "Payments", "search": "Search"}
# A file's count below MIN_RESPONDENTS, as messages show it (one export per team would show its size).
FEWER = f"fewer than {MIN_RESPONDENTS}"
BERLIN = "survey:\n  time_zone: Europe/Berlin\n"
# The trial's campaign: 7 answers in March, 6 in the first week of April (Berlin time).
CAMPAIGN = ([f"2025-03-{day} 10:00:00" for day in (24, 24, 25, 26, 27, 28, 31)]
            + ["2025-04-01 00:30:00", "2025-04-01 09:00:00", "2025-04-02 10:00:00", "2025-04-03 10:00:00",
               "2025-04-07 10:00:00", "2025-04-07 16:00:00"])


def answers(i: int) -> list[int]:
    level = 2 + i % 5
    return [8 - level if n in REVERSED else level for n in range(1, 8)]


def export(path: Path, stamps: list[str], teams=("Payments",), prefix: str = "R",
           header=("response_id", "submitted_at", "team")) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*header, *ITEMS])
    for team in teams:
        for i, stamp in enumerate(stamps):
            writer.writerow([f"{prefix}{team[0]}{i}", stamp, team, *answers(i + len(team))])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def settings_of(folder: Path, mapping: str, name: str):
    (folder / "export_mapping.yml").write_text(mapping, encoding="utf-8")
    return read_mapping(folder).settings(name, "survey")


def waves_of(load) -> dict[str, date]:
    return {row["response_id"]: row["wave_quarter"] for row in load.checked.accepted}


# -- Without a setting: a straddling file warns --------------------------------------------------

def test_a_campaign_across_a_quarter_end_warns_naming_the_file_the_counts_and_the_setting(tmp_path):
    path = export(tmp_path / "campaign.csv", CAMPAIGN)
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, path.name))
    [warning] = [w for w in load.warnings if "straddle" in w]
    assert warning.startswith("campaign.csv: its responses straddle the end of 2025-Q1")
    assert "7 in 2025-Q1 and 6 in 2025-Q2, the 6 of 2025-Q2 all within 14 days of 01 April 2025" in warning
    assert "set wave: 2025-Q1 in a files: entry matching 'campaign.csv' in export_mapping.yml" in warning
    # Set so, every response of the file counts in 2025-Q1, and nothing warns.
    pinned = settings_of(tmp_path, BERLIN + 'files:\n  - match: "campaign.csv"\n    wave: 2025-Q1\n', path.name)
    load = read_survey_exports([path], GROUPS, NOW, settings=pinned)
    assert set(waves_of(load).values()) == {date(2025, 1, 1)} and len(waves_of(load)) == 13
    assert load.files[0].waves == ["2025-Q1"] and not [w for w in load.warnings if "straddle" in w]
    # A campaign that opened early (its few March answers the tail) is named the other way round.
    early = export(tmp_path / "early.csv", CAMPAIGN[5:7] + CAMPAIGN[7:])
    load = read_survey_exports([early], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, early.name))
    assert any(f"{FEWER} in 2025-Q1 and 6 in 2025-Q2" in w and "set wave: 2025-Q2" in w for w in load.warnings)
    # Campaigns in the middle of their quarters (a cumulative export), and a survey open all the
    # time (a weekly pulse), are not named.
    cumulative = export(tmp_path / "cumulative.csv", ["2025-02-10 09:00", "2025-02-12 09:00", "2025-05-12 09:00"],
                        prefix="C")
    pulse = export(tmp_path / "pulse.csv", [f"2025-{month:02d}-{day:02d} 09:00" for month in (1, 2, 3, 4, 5)
                                            for day in (3, 10, 17, 24)], prefix="U")
    load = read_survey_exports([cumulative, pulse], GROUPS, NOW)
    assert not [w for w in load.warnings if "straddle" in w]


# -- A time of day counts by its local date, as a date alone does --------------------------------

def test_a_time_of_day_counts_in_the_quarter_of_its_date_in_the_time_zone(tmp_path):
    # The trial's straggler: 1 April 00:30 in Berlin is 31 March 22:30 UTC, in the wave of 1 April.
    path = export(tmp_path / "midnight.csv", ["2025-04-01 00:30:00"])
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, path.name))
    assert load.files[0].waves == ["2025-Q2"]
    path = export(tmp_path / "berlin.csv", ["2025-04-01 00:30:00", "2025-04-01", "2025-03-31 23:59:00"])
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, path.name))
    assert waves_of(load) == {"RP0": date(2025, 4, 1), "RP1": date(2025, 4, 1), "RP2": date(2025, 1, 1)}
    # The moment stored is still UTC (the response ids of tools numbering from 1 are made of it).
    assert {r["response_id"]: r["submitted_at"] for r in load.checked.accepted}["RP0"] == datetime(2025, 3, 31, 22, 30)
    # West of UTC: 31 March 21:00 in New York is 1 April 01:00 UTC, and counts in Q1; a time with
    # its own offset is taken to the file's time zone too.
    path = export(tmp_path / "new_york.csv", ["2025-03-31 21:00:00", "2025-03-31", "2025-04-01T02:00:00+00:00"])
    load = read_survey_exports([path], GROUPS, NOW,
                               settings=settings_of(tmp_path, "survey:\n  time_zone: America/New_York\n", path.name))
    assert waves_of(load) == {"RP0": date(2025, 1, 1), "RP1": date(2025, 1, 1), "RP2": date(2025, 1, 1)}


# -- The files: entry's wave -----------------------------------------------------------------------

def test_a_wave_setting_is_checked_and_belongs_to_a_files_entry(tmp_path):
    with pytest.raises(MappingError, match=r"files entry 1: wave must be a calendar quarter like 2025-Q1, not "
                                           r"'2025-Q5'"):
        settings_of(tmp_path, 'files:\n  - match: "c.csv"\n    wave: 2025-Q5\n', "c.csv")
    with pytest.raises(MappingError, match="survey: wave names the wave of one campaign's export: set it in a "
                                           "files: entry"):
        settings_of(tmp_path, "survey:\n  wave: 2025-Q1\n", "c.csv")
    with pytest.raises(MappingError, match=r"unknown keys \['wave'\]"):
        settings_of(tmp_path, 'files:\n  - match: "hr.csv"\n    kind: hr\n    wave: 2025-Q1\n', "hr.csv")
    assert settings_of(tmp_path, 'files:\n  - match: "c.csv"\n    wave: 2025-q1\n', "c.csv").wave == date(2025, 1, 1)


def test_a_wave_setting_on_a_file_spanning_more_than_one_quarter_end_stops_it(tmp_path):
    path = export(tmp_path / "all_waves.csv", ["2025-01-20 09:00", "2025-03-30 09:00", "2025-04-02 09:00",
                                                "2025-05-20 09:00", "2025-07-01 09:00"])
    settings = settings_of(tmp_path, 'files:\n  - match: "all_waves.csv"\n    wave: 2025-Q1\n', path.name)
    with pytest.raises(SurveyExportError) as stopped:
        read_survey_exports([path], GROUPS, NOW, settings=settings)
    message = str(stopped.value)
    assert message.startswith("all_waves.csv: its files: entry in export_mapping.yml sets wave: 2025-Q1")
    assert f"but {FEWER} of its 5 responses were submitted more than a quarter away ({FEWER} in 2025-Q3)" in message
    assert "cumulative export), remove wave from the entry" in message


def test_a_wave_setting_on_a_file_with_responses_on_both_sides_of_its_wave_stops_it(tmp_path):
    # Q4 2024, Q1 2025 and Q2 2025 each one quarter from wave 2025-Q1 at most: three waves, not a campaign.
    path = export(tmp_path / "cumulative.csv", ["2024-12-10 09:00", "2025-02-10 09:00", "2025-02-11 09:00",
                                                 "2025-04-02 09:00", "2025-04-03 09:00", "2025-04-04 09:00"])
    settings = settings_of(tmp_path, 'files:\n  - match: "cumulative.csv"\n    wave: 2025-Q1\n', path.name)
    with pytest.raises(SurveyExportError) as stopped:
        read_survey_exports([path], GROUPS, NOW, settings=settings)
    assert (f"but {FEWER} of its 6 responses were submitted more than a quarter away, or in the quarter on one side "
            f"of it while others are in the quarter on the other side ({FEWER} in 2024-Q4)") in str(stopped.value)


def two_team_warehouse(tmp_path, dbt, landing):
    """A warehouse whose team map has Payments and Search by survey group, closed, and the
    resources the survey assets run with on ``landing``."""
    from conftest import Warehouse

    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", [{"team": t, "source": "survey_group", "identifier": t}
                                            for t in ("Payments", "Search")])
    resources = {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
                 "duckdb": WarehouseResource(database=str(warehouse.path))}
    warehouse.close()
    return warehouse, resources


@pytest.mark.slow
def test_a_campaigns_wave_setting_keeps_its_stragglers_in_its_wave_through_to_the_frozen_figures(tmp_path, dbt):
    landing = tmp_path / "landing"
    landing.mkdir()
    export(landing / "safety_survey_2025-03.csv", CAMPAIGN, teams=("Payments", "Search"))
    (landing / "export_mapping.yml").write_text(
        BERLIN + 'files:\n  - match: "safety_survey_2025-03*.csv"\n    wave: 2025-Q1\n', encoding="utf-8")
    warehouse, resources = two_team_warehouse(tmp_path, dbt, landing)
    loaded = dg.materialize([survey_responses], resources=resources)
    metadata = loaded.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["files"].value["safety_survey_2025-03.csv"]["waves"] == ["2025-Q1"]
    assert metadata["files"].value["safety_survey_2025-03.csv"]["wave_setting"] == "2025-Q1"
    warehouse.build("+stg_survey__responses", "+int_team_month_headcount")
    assert warehouse.rows("select wave_quarter, count(distinct response_id) as n "
                          "from restricted.stg_survey__responses group by 1") == [
        {"wave_quarter": date(2025, 1, 1), "n": 26}]
    warehouse.close()
    night = dg.materialize([survey_waves], resources=resources,
                           run_config={"ops": {"survey_waves": {"config": {"as_of": "2025-07-20"}}}})
    assert night.success
    assert warehouse.rows("select wave_quarter, n_respondents from marts.fct_survey_waves") == [
        {"wave_quarter": date(2025, 1, 1), "n_respondents": 26}]
    assert warehouse.rows("select team, n_respondents from marts.fct_team_survey_waves order by team") == [
        {"team": "Payments", "n_respondents": 13}, {"team": "Search", "n_respondents": 13}]


# -- A warehouse loaded before the wave was stored -------------------------------------------------

@pytest.mark.slow
def test_responses_stored_before_the_wave_keep_their_ids_rows_and_frozen_wave(tmp_path, dbt):
    """Regression guard for the upgrade: the old code had no stored wave, so this cannot fail
    on it; it fails on a fix that re-keys responses, loses a kept file's rows, or requires the
    column."""
    landing = tmp_path / "landing"
    landing.mkdir()
    # LimeSurvey numbers responses from 1: its ids are number@submission time (UTC).
    campaign = export(landing / "limesurvey.csv", CAMPAIGN[:8], teams=("Payments", "Search"), prefix="",
                      header=("Response ID", "Date submitted", "team"))
    (landing / "export_mapping.yml").write_text(BERLIN + "  preset: limesurvey\n", encoding="utf-8")
    warehouse, resources = two_team_warehouse(tmp_path, dbt, landing)
    assert dg.materialize([survey_responses], resources=resources).success
    # As a version before the wave was stored left it: no wave_quarter column.
    warehouse.conn.execute("alter table restricted.survey__responses drop column wave_quarter")
    before = warehouse.rows("select response_id, submitted_at from restricted.survey__responses "
                            "group by all order by all")
    assert {"P7@2025-03-31T22:30:00", "S7@2025-03-31T22:30:00"} <= {r["response_id"] for r in before}
    warehouse.build("+stg_survey__responses", "+int_team_month_headcount")
    assert warehouse.rows("select distinct wave_quarter from restricted.stg_survey__responses") == [
        {"wave_quarter": date(2025, 1, 1)}]  # 1 April 00:30 in Berlin: its UTC quarter, as before
    warehouse.close()
    assert dg.materialize([survey_waves], resources=resources, run_config={
        "ops": {"survey_waves": {"config": {"as_of": "2025-04-20"}}}}).success
    frozen = warehouse.rows("select * from marts.fct_team_survey_waves order by all")
    members = warehouse.rows("select response_id, wave_quarter from restricted.survey__wave_members order by all")
    assert len(members) == 16 and {m["wave_quarter"] for m in members} == {date(2025, 1, 1)}
    warehouse.close()

    # A file still being copied keeps the rows its last load (without the column) took from it.
    os.utime(campaign, (time.time(), time.time()))
    waiting = {**resources, "landing": LandingFolderResource(path=str(landing), hr_id_salt="salt",
                                                             settle_seconds=3600)}
    assert dg.materialize([survey_responses], resources=waiting).success
    kept = warehouse.rows("select response_id, submitted_at, wave_quarter from restricted.survey__responses "
                          "group by all order by all")
    assert [{k: r[k] for k in ("response_id", "submitted_at")} for r in kept] == before
    assert {r["wave_quarter"] for r in kept} == {None}
    warehouse.close()

    # Read anew: the same ids, the 00:30 answers now in Q2 by their Berlin date; the frozen Q1
    # keeps them and its figures, and Q2 is not made of them.
    os.utime(campaign, (time.time() - 7200, time.time() - 7200))
    assert dg.materialize([survey_responses], resources=resources).success
    after = warehouse.rows("select response_id, submitted_at, wave_quarter from restricted.survey__responses "
                           "group by all order by all")
    assert [{k: r[k] for k in ("response_id", "submitted_at")} for r in after] == before
    assert {r["response_id"]: r["wave_quarter"] for r in after}["P7@2025-03-31T22:30:00"] == date(2025, 4, 1)
    warehouse.build("stg_survey__responses")
    warehouse.close()
    assert dg.materialize([survey_waves], resources=resources, run_config={
        "ops": {"survey_waves": {"config": {"as_of": "2025-07-20"}}}}).success
    assert warehouse.rows("select * from marts.fct_team_survey_waves order by all") == frozen
    assert warehouse.rows("select response_id, wave_quarter from restricted.survey__wave_members "
                          "order by all") == members
    assert warehouse.rows("select distinct wave_quarter from marts.fct_survey_waves") == [
        {"wave_quarter": date(2025, 1, 1)}]
