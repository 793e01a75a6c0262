"""Which files of the landing folder are survey or HR exports, when no preset knows their header."""

import csv
from pathlib import Path

from assets.landing.files import classify
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import read_mapping

# Personio's German export (README, "Bring your own exports"): no header a preset knows.
PERSONIO = "Personalnummer;Abteilung;Eintrittsdatum;Austrittsdatum\r\n101;Payments;15.03.2023;\r\n"
# Typeform's CSV download: a `#` token, the questions, `Submit Date (UTC)`.
TYPEFORM = [["#", "Which team are you in?", *(item.text for item in PSYCHOLOGICAL_SAFETY.items), "Submit Date (UTC)"],
            ["abc123", "Payments", *["4"] * len(PSYCHOLOGICAL_SAFETY.items), "2025-04-01 10:00:00"]]


def landing(tmp_path: Path, mapping: str) -> Path:
    (tmp_path / "personio.csv").write_text(PERSONIO, encoding="utf-8")
    with (tmp_path / "typeform.csv").open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(TYPEFORM)
    (tmp_path / "export_mapping.yml").write_text(mapping, encoding="utf-8")
    return tmp_path


def test_a_header_the_mapping_names_is_recognised_without_a_files_entry(tmp_path):
    folder = landing(tmp_path, "hr:\n  columns: {employee_id: Personalnummer, org_unit: Abteilung, "
                               "hire_date: Eintrittsdatum, termination_date: Austrittsdatum}\n"
                               "survey:\n  preset: generic\n  columns: {response_id: '#', team: 'Which team are you in?', "
                               "submitted_at: Submit Date (UTC)}\n")
    mapping = read_mapping(folder)
    assert classify(folder / "personio.csv", mapping) == "hr"
    assert classify(folder / "typeform.csv", mapping) == "survey"


def test_without_the_mapping_naming_them_they_are_not_recognised(tmp_path):
    folder = landing(tmp_path, "survey:\n  columns: {response_id: '#'}\n")
    mapping = read_mapping(folder)
    assert classify(folder / "personio.csv", mapping) is None
    # Columns named for a survey read by preset detection do not make any file a survey.
    assert classify(folder / "typeform.csv", mapping) is None


def test_a_survey_whose_id_column_the_hr_mapping_names_stays_a_survey(tmp_path):
    # Microsoft Forms' export beside a roster whose employee ids are emails: the survey's Email
    # column is no roster's header without an org unit beside it.
    header = ["ID", "Start time", "Completion time", "Email", "Name", "Team",
              *(item.text for item in PSYCHOLOGICAL_SAFETY.items)]
    with (tmp_path / "forms.csv").open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows([header, ["1", "1/18/24 13:50:01", "1/18/24 13:56:43", "a@example.com", "A",
                                             "Payments", *["4"] * len(PSYCHOLOGICAL_SAFETY.items)]])
    for mapping in ("", "hr:\n  columns: {employee_id: Email}\n", "hr:\n  columns: {employee_id: ID}\n"):
        (tmp_path / "export_mapping.yml").write_text(mapping, encoding="utf-8")
        assert classify(tmp_path / "forms.csv", read_mapping(tmp_path)) == "survey", mapping
