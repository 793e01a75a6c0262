"""Survey exports the third adversarial trial loaded wrongly, shaped like the tools' own exports:

- Typeform's CSV download ("#" response token, one column per question, Start Date (UTC),
  Submit Date (UTC), Network ID; Typeform Help Center, "Download your results") whose Opinion
  Scale questions answer 0-10, as Workday Peakon's do. tests/data/typeform_opinion_scale_0_10.csv
  is the trial's file (/tmp/adv3_exports/mk_s1.py: 3 teams of 8 respondents). Such a file used to
  load in part, its 1..7 answers read as a 7-point scale's and the rest quarantined.
- Microsoft Forms' "Open in Excel" workbook from a form in another language: the fixed columns
  are written in the form's language (German: ID, Startzeit, Fertigstellungszeit, E-Mail, Name,
  Zeitpunkt der letzten Änderung, as the trial's German workbook has them, /tmp/adv3_exports/
  mk_s2.py), their places are not. Each form numbers its responses from 1. It used to be taken
  for a Culture Amp extract ("this export has no response dates"), and naming its columns loaded
  it with ids that are not unique across forms, losing a wave as duplicates.
- A survey date without a time of day in a mapping time_zone east of UTC (01.04.2025 in
  Europe/Berlin) used to become 31 March 22:00 UTC and join the previous quarter's wave.
"""

import csv
import io
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import openpyxl
import pytest

from assets.landing.assets import survey_responses
from assets.landing.files import classify
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import SurveyExportError, read_survey_exports
from assets.models.assets import survey_waves
from assets.warehouse.resource import WarehouseResource

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]
REVERSED = {item.number for item in PSYCHOLOGICAL_SAFETY.items if item.reverse_keyed}
GROUPS = {"payments": "Payments", "search": "Search", "platform": "Platform"}
TYPEFORM_EXPORT = Path(__file__).parent / "data" / "typeform_opinion_scale_0_10.csv"


def consistent_answers(level: int, k: int = 7) -> list[int]:
    return [k + 1 - level if n in REVERSED else level for n in range(1, 8)]


def csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def settings_of(folder: Path, mapping: str, file_name: str):
    (folder / "export_mapping.yml").write_text(mapping, encoding="utf-8")
    return read_mapping(folder).settings(file_name, "survey")


# -- Answers beyond the file's scale stop the file --------------------------------------------

TYPEFORM_MAPPING = ("survey:\n  preset: generic\n  columns: {response_id: '#', submitted_at: 'Submit Date (UTC)', "
                    "team: 'Which team are you on?'}\n")


def test_a_zero_to_ten_export_is_not_loaded_in_part(tmp_path):
    path = Path(shutil.copy(TYPEFORM_EXPORT, tmp_path / "responses_team_survey.csv"))
    settings = settings_of(tmp_path, TYPEFORM_MAPPING, path.name)
    with pytest.raises(SurveyExportError) as stopped:
        read_survey_exports([path], GROUPS, NOW, settings=settings)
    message = str(stopped.value)
    assert message.startswith("responses_team_survey.csv: answers outside the 7-point scale it is read on (1..7): "
                              "0 (4 answers), 8 (22 answers), 9 (9 answers), 10 (2 answers); its answers run from "
                              "0 to 10, so it is not a 7-point export and none of it is loaded")
    assert "Only 5- and 7-point scales, answered 1..5 or 1..7, are read" in message
    assert "kind: ignore" in message and "survey.answer_labels" in message
    # Nor on the 5-point setting.
    with pytest.raises(SurveyExportError, match="answers outside the 5-point scale .* run from 0 to 10"):
        read_survey_exports([path], GROUPS, NOW, settings=settings_of(
            tmp_path, TYPEFORM_MAPPING + "  scale_points: 5\n", path.name))


def test_one_answer_beyond_the_scale_stops_the_file_whichever_rows_it_is_in(tmp_path):
    # A 0-10 export whose answers happen to stay in 1..7 but one: the other rows are no 7-point answers either.
    rows = [["response_id", "submitted_at", "team", *ITEMS]]
    rows += [[f"R{i}", "2025-03-10 09:00:00", "Search", *consistent_answers(2 + i % 5)] for i in range(20)]
    rows[7][5] = "10"
    path = tmp_path / "peakon.csv"
    path.write_text(csv_text(rows))
    with pytest.raises(SurveyExportError, match=r"peakon.csv: answers outside .*: 10 \(1 answer\); its answers run "
                                                r"from 2 to 10.*\{\"10\": null\}"):
        read_survey_exports([path], GROUPS, NOW)


def test_a_scale_numbered_from_zero_stops_until_its_codes_are_mapped(tmp_path):
    # Qualtrics "Recode Values" 0..6 for a 7-point scale: unmapped, answers 1..6 would read one point low.
    rows = [["response_id", "submitted_at", "team", *ITEMS]]
    rows += [[f"R{i}", "2025-03-10 09:00:00", "Payments", *(a - 1 for a in consistent_answers(1 + i % 7))]
             for i in range(14)]
    path = tmp_path / "recoded.csv"
    path.write_text(csv_text(rows))
    with pytest.raises(SurveyExportError, match=r"recoded.csv: answers outside .*: 0 \(14 answers\); its answers "
                                                r"run from 0 to 6.*map each code there"):
        read_survey_exports([path], GROUPS, NOW)
    settings = settings_of(tmp_path, "survey:\n  answer_labels: {"
                           + ", ".join(f'"{a}": {a + 1}' for a in range(7)) + "}\n", path.name)
    load = read_survey_exports([path], GROUPS, NOW, settings=settings)
    assert not load.checked.quarantined and load.responses == 14
    assert {r["answer"] for r in load.checked.accepted} == set(range(1, 8))


def test_a_dont_know_code_after_the_scale_is_no_answer_once_mapped(tmp_path):
    # A "Don't know" choice numbered 8 after a 7-point scale (Qualtrics numbers choices in order).
    rows = [["response_id", "submitted_at", "team", *ITEMS]]
    rows += [[f"R{i}", "2025-03-10 09:00:00", "Payments", *consistent_answers(1 + i % 7)] for i in range(7)]
    rows[3][4] = "8"
    path = tmp_path / "dont_know.csv"
    path.write_text(csv_text(rows))
    with pytest.raises(SurveyExportError, match=r"\{\"8\": null\}"):
        read_survey_exports([path], GROUPS, NOW)
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(
        tmp_path, "survey:\n  answer_labels: {'8': null}\n", path.name))
    assert not load.checked.quarantined and load.responses == 7 and load.partial_responses == 1


def test_five_and_seven_point_exports_and_labels_still_load(tmp_path):
    seven = tmp_path / "seven.csv"
    seven.write_text(csv_text([["response_id", "submitted_at", "team", *ITEMS]] + [
        [f"S{i}", "2025-03-10 09:00:00", "Search", *consistent_answers(1 + i % 7)] for i in range(21)]))
    five = tmp_path / "five.csv"
    labels = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]
    five.write_text(csv_text([["response_id", "submitted_at", "team", *ITEMS]] + [
        [f"F{i}", "2025-03-10 09:00:00", "Payments", *(labels[a - 1] for a in consistent_answers(1 + i % 5, 5))]
        for i in range(10)]))
    assert read_survey_exports([seven], GROUPS, NOW).responses == 21
    load = read_survey_exports([five], GROUPS, NOW, 5)
    assert load.responses == 10 and not load.checked.quarantined


# -- Microsoft Forms workbooks in the form's language -----------------------------------------

# The fixed columns as the trial's German workbook has them; the French and Spanish ones as a
# localised form might write them (detection goes by the columns' places and cells, not by these).
FIXED_COLUMNS = {
    "de": ["ID", "Startzeit", "Fertigstellungszeit", "E-Mail", "Name", "Zeitpunkt der letzten Änderung"],
    "fr": ["ID", "Heure de début", "Heure de fin", "Adresse de messagerie", "Nom", "Heure de la dernière modification"],
    "es": ["ID", "Hora de inicio", "Hora de finalización", "Correo electrónico", "Nombre",
           "Hora de la última modificación"],
}
TEAM_QUESTION = "Team"


def forms_workbook(path: Path, fixed: list[str], start: datetime, n: int = 12) -> Path:
    """One form's responses, numbered from 1, answered as numbers (a Likert question's values)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    sheet.append([*fixed, TEAM_QUESTION, *ITEMS])
    for i in range(1, n + 1):
        completed = start.replace(minute=5 + i)
        sheet.append([i, start.replace(minute=i), completed, "anonymous", None, None, "Payments",
                      *consistent_answers(1 + i % 7)])
        for column in (2, 3):
            sheet.cell(row=i + 1, column=column).number_format = "dd.mm.yy hh:mm:ss"
    workbook.save(path)
    return path


@pytest.mark.parametrize("language", sorted(FIXED_COLUMNS))
def test_a_microsoft_forms_workbook_in_any_language_is_recognised_and_both_waves_load(tmp_path, language):
    fixed = FIXED_COLUMNS[language]
    waves = [forms_workbook(tmp_path / f"Psychological safety Q{q}(1-12).xlsx", fixed, start)
             for q, start in ((1, datetime(2025, 2, 10, 9)), (2, datetime(2025, 5, 12, 9)))]
    mapping = read_mapping(tmp_path)
    assert [classify(path, mapping) for path in waves] == ["survey", "survey"]
    load = read_survey_exports(waves, GROUPS, NOW)
    assert [f.preset for f in load.files] == ["microsoft_forms", "microsoft_forms"]
    # Each form numbers from 1: the id is ID@completion time, so neither wave is a duplicate of the other.
    assert not load.checked.quarantined and load.responses == 24
    assert {f.waves[0] for f in load.files} == {"2025-Q1", "2025-Q2"}
    assert any(r["response_id"] == "1@2025-05-12T09:06:00" for r in load.checked.accepted)


def test_naming_a_microsoft_forms_workbooks_columns_keeps_its_ids_scoped(tmp_path):
    # What the README told the trial's reader to do: name the columns (the preset is still found).
    waves = [forms_workbook(tmp_path / f"Q{q}.xlsx", FIXED_COLUMNS["de"], start)
             for q, start in ((1, datetime(2025, 2, 10, 9)), (2, datetime(2025, 5, 12, 9)))]
    settings = settings_of(tmp_path, "survey:\n  columns: {response_id: ID, submitted_at: Fertigstellungszeit}\n",
                           "Q1.xlsx")
    load = read_survey_exports(waves, GROUPS, NOW, settings=settings)
    assert load.responses == 24 and not load.checked.quarantined


def test_a_workbook_with_dates_taken_for_culture_amp_names_the_presets_to_set(tmp_path):
    # A workbook no preset knows, with date cells (its first column is not ID): not "no response dates".
    path = tmp_path / "export.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Antwort", "Startzeit", "Fertigstellungszeit", TEAM_QUESTION, *ITEMS])
    for i in range(1, 4):
        sheet.append([f"A{i}", datetime(2025, 2, 10, 9, i), datetime(2025, 2, 10, 9, i + 5), "Payments",
                      *consistent_answers(3)])
    workbook.save(path)
    with pytest.raises(SurveyExportError) as stopped:
        read_survey_exports([path], GROUPS, NOW)
    message = str(stopped.value)
    assert "preset culture_amp" in message and "no response dates" not in message
    assert "'Startzeit', 'Fertigstellungszeit' hold dates" in message
    assert "preset: microsoft_forms" in message and "preset: generic" in message
    # A real Culture Amp extract (no dates at all) still asks for the survey date.
    sheet.delete_cols(2, 2)
    workbook.save(path)
    with pytest.raises(SurveyExportError, match="this export has no response dates, give the survey date as "
                                                "submitted_at_value"):
        read_survey_exports([path], GROUPS, NOW)


# -- A date without a time of day is that calendar day -----------------------------------------

BERLIN = "survey:\n  time_zone: Europe/Berlin\n"


def generic_export(path: Path, dates: list[str]) -> Path:
    path.write_text(csv_text([["response_id", "submitted_at", "team", *ITEMS]] + [
        [f"R{i}", when, "Payments", *consistent_answers(2 + i % 5)] for i, when in enumerate(dates)]))
    return path


@pytest.fixture(params=["UTC", "Asia/Kolkata", "America/Los_Angeles"])
def host_time_zone(request, monkeypatch):
    """The process's own time zone, a laptop's outside UTC: Python reads a naive time in it."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("written", ["2025-04-01", "01.04.2025", "01-Apr-2025"])
def test_a_date_without_a_time_is_its_calendar_day_whatever_the_time_zone(tmp_path, written, host_time_zone):
    path = generic_export(tmp_path / "survey_q2.csv", [written] * 3)
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, path.name))
    assert {r["submitted_at"] for r in load.checked.accepted} == {datetime(2025, 4, 1)}
    assert load.files[0].waves == ["2025-Q2"]


def test_a_time_of_day_is_still_read_in_the_time_zone(tmp_path, host_time_zone):
    path = generic_export(tmp_path / "survey.csv", ["2025-04-01 00:30:00", "2025-04-01 09:00"])
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, path.name))
    assert sorted({r["submitted_at"] for r in load.checked.accepted}) == [
        datetime(2025, 3, 31, 22, 30), datetime(2025, 4, 1, 7, 0)]


def test_a_workbooks_date_cells_are_their_calendar_day_and_its_times_are_in_the_time_zone(tmp_path):
    path = tmp_path / "survey.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["response_id", "submitted_at", "team", *ITEMS])
    for i, when in enumerate([date(2025, 4, 1), 45748, 45748.5, datetime(2025, 4, 1, 0, 30, 15)]):
        sheet.append([f"R{i}", when, "Payments", *consistent_answers(3)])
    workbook.save(path)
    load = read_survey_exports([path], GROUPS, NOW, settings=settings_of(tmp_path, BERLIN, path.name))
    assert {r["response_id"]: r["submitted_at"] for r in load.checked.accepted} == {
        "R0": datetime(2025, 4, 1), "R1": datetime(2025, 4, 1),  # a date cell, a whole serial number
        "R2": datetime(2025, 4, 1, 10, 0), "R3": datetime(2025, 3, 31, 22, 30, 15)}  # noon and 00:30 in Berlin


def test_twelve_hour_times_without_seconds_are_read(tmp_path):
    # Excel's US and UK text for a date-time cell saved as CSV.
    us = generic_export(tmp_path / "us.csv", ["3/31/2025 11:45 PM", "4/1/2025 12:15 AM", "4/13/2025 9:05 AM"])
    uk = generic_export(tmp_path / "uk.csv", ["31/03/2025 11:45 pm", "01/04/2025 12:15 am", "13/04/2025 9:05 am"])
    for path in (us, uk):
        load = read_survey_exports([path], GROUPS, NOW)
        assert not load.checked.quarantined
        assert sorted({r["submitted_at"] for r in load.checked.accepted}) == [
            datetime(2025, 3, 31, 23, 45), datetime(2025, 4, 1, 0, 15), datetime(2025, 4, 13, 9, 5)]


# -- Files on different scales load, and the survey figures stop naming them -------------------

@pytest.mark.slow
def test_survey_figures_on_files_of_different_scales_stop_naming_each_scales_files(tmp_path, dbt):
    from conftest import Warehouse

    landing = tmp_path / "landing"
    landing.mkdir()
    header = ["response_id", "submitted_at", "team", *ITEMS]
    (landing / "q1_seven.csv").write_text(csv_text([header] + [
        [f"S{i}", "2025-02-10 09:00:00", "Search", *consistent_answers(1 + i % 7)] for i in range(6)]))
    (landing / "q1_five.csv").write_text(csv_text([header] + [
        [f"F{i}", "2025-02-10 09:00:00", "Payments", *consistent_answers(1 + i % 5, 5)] for i in range(6)]))
    (landing / "export_mapping.yml").write_text('files:\n  - match: "q1_five.csv"\n    scale_points: 5\n')
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", [{"team": team, "source": "survey_group", "identifier": team}
                                            for team in ("Search", "Payments")])
    resources = {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
                 "duckdb": WarehouseResource(database=str(warehouse.path))}
    warehouse.close()
    loaded = dg.materialize([survey_responses], resources=resources)
    assert loaded.success  # each file on its own scale
    metadata = loaded.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["scale_points"].value == [5, 7]
    assert {name: file["scale_points"] for name, file in metadata["files"].value.items()} == {
        "q1_five.csv": 5, "q1_seven.csv": 7}
    warehouse.build("+stg_survey__responses", "+int_team_month_headcount")
    warehouse.close()

    figures = dg.materialize([survey_waves], resources=resources, raise_on_error=False,
                             run_config={"ops": {"survey_waves": {"config": {"as_of": "2025-06-30"}}}})
    assert not figures.success
    failure = next(e for e in figures.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.cause.message
    assert "survey answers on different scales" in message
    assert "5-point in q1_five.csv; 7-point in q1_seven.csv" in message
    assert "scale_points in export_mapping.yml" in message
