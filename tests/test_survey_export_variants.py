"""Answers, dates and headers as survey tools write them beyond their defaults: Qualtrics'
5-point agreement text ("Somewhat agree"), its "Recode seen but unanswered questions as -99"
and custom recode values (Qualtrics support, "Recode Values" and "Data export options"), a
5-point scale's labels on the 7-point setting, Google Forms timestamps with the form's zone
abbreviation ("2022/06/22 11:07:29 AM AST" in a public app's Forms data, GeckoRobotics/
gecko-sustainability components/Form.tsx), and a header cell with a line break in an
Excel-saved CSV (Excel ends records with CRLF and writes a break inside a cell as LF)."""

from collections import Counter
from datetime import datetime

import pytest
from test_export_presets import GROUPS, ITEMS, NOW, consistent_answers, csv_text, google_forms_rows, qualtrics_rows

from assets.landing.files import classify
from assets.landing.mapping import read_mapping
from assets.landing.survey import read_survey_exports

QUALTRICS_LABELS5 = ["Strongly disagree", "Somewhat disagree", "Neither agree nor disagree", "Somewhat agree",
                     "Strongly agree"]
FORMS_LABELS5 = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]
ANSWER_COLUMNS = slice(11, 18)  # the seven items in qualtrics_rows


def generic_rows(answers_of, n: int) -> list[list[str]]:
    return [["response_id", "submitted_at", "team", *ITEMS],
            *([f"R{i}", "2025-02-10 09:00:00", "Payments", *answers_of(i)] for i in range(n))]


def answers_by_response(load) -> dict[str, dict[int, int]]:
    found: dict[str, dict[int, int]] = {}
    for row in load.checked.accepted:
        found.setdefault(row["response_id"], {})[row["item_no"]] = row["answer"]
    return found


def test_qualtrics_five_point_agreement_text_loads_on_the_five_point_scale(tmp_path):
    rows = qualtrics_rows(labels=False)
    for row in rows[3:]:
        row[ANSWER_COLUMNS] = [QUALTRICS_LABELS5[min(int(a), 5) - 1] for a in row[ANSWER_COLUMNS]]
    path = tmp_path / "qualtrics.csv"
    path.write_text(csv_text(rows))
    load = read_survey_exports([path], GROUPS, NOW, 5)
    assert not load.checked.quarantined and load.responses == 9
    assert Counter(r["answer"] for r in load.checked.accepted).keys() <= {1, 2, 3, 4, 5}
    # R_000abc answered 6 or 2 on 7 points, written here as the 5-point labels 5 and 2.
    assert answers_by_response(load)["R_000abc"] == {n: min(a, 5) for n, a in enumerate(consistent_answers(2), 1)}


@pytest.mark.parametrize("labels", [FORMS_LABELS5, QUALTRICS_LABELS5], ids=["forms", "qualtrics"])
def test_five_point_labels_on_the_seven_point_setting_warn(tmp_path, labels):
    path = tmp_path / "forms.csv"
    path.write_text(csv_text(generic_rows(lambda i: [labels[a - 1] for a in consistent_answers(1 + i % 5, 5)], 24)))
    [warning] = read_survey_exports([path], GROUPS, NOW, 7).warnings
    assert "5-point" in warning and "only the answers" in warning
    # Every one of a 7-point scale's labels in use: no warning.
    seven = ["Strongly disagree", "Disagree", "Somewhat disagree", "Neither agree nor disagree", "Somewhat agree",
             "Agree", "Strongly agree"]
    path.write_text(csv_text(generic_rows(lambda i: [seven[a - 1] for a in consistent_answers(1 + i % 7)], 24)))
    assert read_survey_exports([path], GROUPS, NOW, 7).warnings == []


def test_qualtrics_seen_but_unanswered_is_no_answer(tmp_path):
    rows = qualtrics_rows(labels=False)
    rows[3][ANSWER_COLUMNS.start + 2] = "-99"  # R_000abc saw item 3 and skipped it
    path = tmp_path / "qualtrics.csv"
    path.write_text(csv_text(rows))
    load = read_survey_exports([path], GROUPS, NOW)
    assert not load.checked.quarantined and load.responses == 9 and load.partial_responses == 1
    assert sorted(answers_by_response(load)["R_000abc"]) == [1, 2, 4, 5, 6, 7]


def test_a_tools_recode_values_and_no_answer_codes_are_read_through_answer_labels(tmp_path):
    # Recode values 0..6 (a scale recoded to start at 0) and -98 for "prefer not to say".
    path = tmp_path / "recoded.csv"
    path.write_text(csv_text(generic_rows(lambda i: [*(str(a - 1) for a in consistent_answers(2 + i % 5))][:6]
                                          + ["-98"], 3)))
    without = read_survey_exports([path], GROUPS, NOW)
    assert not without.checked.accepted  # 0 and -98 are not on the 1..7 scale: the reason says how to map them
    assert all("survey.answer_labels" in row["reason"] for row in without.checked.quarantined)
    (tmp_path / "export_mapping.yml").write_text(
        "survey:\n  answer_labels: {" + ", ".join(f'"{a}": {a + 1}' for a in range(7)) + ', "-98": null}\n')
    settings = read_mapping(tmp_path).settings(path.name, "survey")
    load = read_survey_exports([path], GROUPS, NOW, settings=settings)
    assert not load.checked.quarantined
    assert answers_by_response(load)["R0"] == dict(enumerate(consistent_answers(2)[:6], start=1))


def test_a_line_break_inside_a_header_cell_of_an_excel_csv_is_read(tmp_path):
    rows = generic_rows(lambda i: consistent_answers(2 + i % 5), 6)
    rows[0][4] = f"{ITEMS[1]}\n(optional)"  # Alt+Enter in a header cell of the sheet
    path = tmp_path / "survey.csv"
    path.write_text(csv_text(rows), newline="")  # records end in CRLF, the cell's break is LF
    assert b"\n(optional)" in path.read_bytes() and b"\r\n(optional)" not in path.read_bytes()
    assert classify(path, read_mapping(tmp_path)) == "survey"
    load = read_survey_exports([path], GROUPS, NOW)
    assert not load.checked.quarantined and load.responses == 6
    assert answers_by_response(load)["R0"] == dict(enumerate(consistent_answers(2), start=1))


def test_google_forms_timestamps_with_the_forms_zone_abbreviation_are_read_in_that_zone(tmp_path):
    rows = google_forms_rows(4)
    # A wave across the change to daylight saving time in New York (10 March 2024).
    stamps = ["2024/03/08 1:07:29 PM EST", "2024/03/09 11:00:00 PM EST", "2024/03/11 9:15:00 AM EDT",
              "2024/03/12 4:30:00 PM EDT"]
    for row, stamp in zip(rows[1:], stamps):
        row[0] = stamp
    path = tmp_path / "Team survey (Responses).csv"
    path.write_text(csv_text(rows))
    (tmp_path / "export_mapping.yml").write_text("survey:\n  columns: {team: Your team}\n")
    load = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(tmp_path).settings(path.name, "survey"))
    assert not load.checked.quarantined
    assert sorted({r["submitted_at"] for r in load.checked.accepted}) == [
        datetime(2024, 3, 8, 18, 7, 29), datetime(2024, 3, 10, 4, 0), datetime(2024, 3, 11, 13, 15),
        datetime(2024, 3, 12, 20, 30)]


@pytest.mark.parametrize("appended", [b"\n", b"\r\n"], ids=["LF row after CRLF rows", "CRLF row after LF rows"])
def test_a_file_mixing_line_endings_loads_every_row(tmp_path, appended):
    # A row added by hand in an editor that writes the other line ending.
    rows = generic_rows(lambda i: consistent_answers(2 + i % 5), 5)
    ending = b"\n" if appended == b"\r\n" else b"\r\n"
    path = tmp_path / "survey.csv"
    path.write_bytes(csv_text(rows).replace("\r\n", "\n").encode().replace(b"\n", ending)
                     + ",".join(["R9", "2025-02-10 09:00:00", "Payments", *map(str, consistent_answers(3))]).encode()
                     + appended)
    load = read_survey_exports([path], GROUPS, NOW)
    assert not load.checked.quarantined and load.responses == 6
