"""Survey and HR export loading: item matching, scoring, encodings, and quarantine of bad rows
(the project's own layouts: the generic survey preset and the HR snapshot files)."""

import csv
import io
import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg
import openpyxl
import pytest

from assets.landing.assets import survey_responses, team_map
from assets.landing.files import PEEK_BYTES, classify
from assets.landing.hr import read_hr_file
from assets.landing.mapping import Settings, read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import detect_encoding, take_snapshot
from assets.landing.survey import EDMONDSON_ITEMS, read_survey_exports
from assets.warehouse.resource import WarehouseResource
from pipelines.synthetic.model import GroundTruth
from pipelines.synthetic.org import OrgSpec, generate, write_landing

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
ITEMS = [text for text, _ in EDMONDSON_ITEMS]


def write_csv(path, rows, encoding="utf-8", header=None):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def response(response_id, team="Payments", submitted="2025-02-10 09:00:00", answers=(5, 5, 5, 5, 5, 5, 5)):
    row = {"response_id": response_id, "submitted_at": submitted, "team": team}
    row.update({text: str(a) for text, a in zip(ITEMS, answers)})
    return row


def survey(path, scale_points=7, groups=("Payments", "Search")):
    return read_survey_exports([path], set(groups), NOW, scale_points)


def hr(path, org_units=("OU-1",)):
    return read_hr_file(take_snapshot(path, path.parent), path.name, Settings(), {u.lower(): u for u in org_units},
                        NOW, "salt", path.parent)


def test_items_are_matched_by_text_not_position_and_reverse_scored(tmp_path):
    # Columns shuffled, with stray case, spacing, a curly apostrophe-free variant and a free-text column.
    header = ["Comments", ITEMS[3].upper(), "response_id", "  " + ITEMS[0].replace(" ", "  ") + " ", "team",
              *ITEMS[1:3], "submitted_at", *ITEMS[4:]]
    row = {"Comments": "my manager is X", header[1]: "6", "response_id": "R1", header[3]: "2", "team": "Payments",
           ITEMS[1]: "7", ITEMS[2]: "", "submitted_at": "2025-02-10T09:00:00+02:00", ITEMS[4]: "1", ITEMS[5]: "4",
           ITEMS[6]: "3"}
    load = survey(write_csv(tmp_path / "s.csv", [row], header=header))
    scores = {r["item_no"]: (r["answer"], r["score"]) for r in load.checked.accepted}
    # Item 1 and 5 are reverse-scored (8 - answer); item 3 was skipped: a partial answer.
    assert scores == {1: (2, 6), 2: (7, 7), 4: (6, 6), 5: (1, 7), 6: (4, 4), 7: (3, 3)}
    assert load.partial_responses == 1 and load.files[0].ignored_columns == ["Comments"]
    assert load.checked.accepted[0]["submitted_at"] == datetime(2025, 2, 10, 7, 0)  # offset normalised to UTC


def test_five_point_scale_reverses_with_k_plus_one(tmp_path):
    load = survey(write_csv(tmp_path / "s.csv", [response("R1", answers=(1, 2, 5, 4, 2, 3, 5))]), scale_points=5)
    assert {r["item_no"]: r["score"] for r in load.checked.accepted} == {1: 5, 2: 2, 3: 1, 4: 4, 5: 4, 6: 3, 7: 5}
    with pytest.raises(ValueError, match="5 or 7"):
        survey(tmp_path / "s.csv", scale_points=6)


def test_bad_survey_rows_are_quarantined_with_a_reason_and_nothing_is_lost(tmp_path):
    rows = [
        response("R1"),
        response("R2", answers=(5, 5, 4.5, 5, 5, 5, 5)),  # no answer on a scale
        response("R3", answers=(5, "x", 5, 5, 5, 5, 5)),
        response("R4", team="Atlantis"),
        response("R5", submitted="2031-01-01 00:00:00"),
        response("R6", submitted="10/02/2025"),
        response("R7", answers=("",) * 7),
        response("R8", submitted="2025-02-10 09:00:00"),
        response("R8", submitted="2025-02-11 09:00:00", answers=(4,) * 7),  # resubmitted: the latest is kept
    ]
    load = survey(write_csv(tmp_path / "s.csv", rows))
    reasons = {json.loads(q["raw_row"])["response_id"] + f"@{q['source_line']}": q["reason"]
               for q in load.checked.quarantined}
    assert reasons["R2@3"].startswith("not a whole number: item 3 answer '4.5'")
    assert reasons["R3@4"].startswith("unknown answer: item 2 answer 'x'")
    assert reasons["R4@5"].startswith("unknown team: survey group 'Atlantis'")
    assert reasons["R5@6"].startswith("future date")
    assert reasons["R6@7"].startswith("bad date")
    assert reasons["R7@8"].startswith("no answers")
    assert reasons["R8@9"] == "duplicate: response_id R8 also on line 10, which is kept"
    assert load.checked.reasons() == {"not a whole number": 1, "unknown answer": 1, "unknown team": 1, "future date": 1,
                                      "bad date": 1, "no answers": 1, "duplicate": 1}
    kept = {r["response_id"]: r["answer"] for r in load.checked.accepted}
    assert kept == {"R1": 5, "R8": 4}
    assert load.responses + len(load.checked.quarantined) == len(rows)


def test_a_six_on_the_five_point_setting_stops_the_file_naming_the_seven_point_setting(tmp_path):
    # A 7-point export read on the 5-point setting: its rows with no 6 or 7 would load as 5-point answers.
    rows = [response("R1", answers=(5, 6, 5, 5, 5, 5, 5)), response("R2", answers=(3, 3, 4, 2, 3, 3, 3))]
    with pytest.raises(ValueError, match=r"s.csv: answers outside the 5-point scale .*: 6 \(1 answer\); its answers "
                                         r"run from 2 to 6.*set scale_points: 7 in a files: entry matching 's.csv'"):
        survey(write_csv(tmp_path / "s.csv", rows), scale_points=5)


def test_a_seven_point_setting_on_a_five_point_export_warns(tmp_path):
    # Consistent answers on a 5-point scale: agreement a, its mirror 6 - a on reverse-keyed items.
    rows = [response(f"R{i}", answers=tuple(6 - (i % 5 + 1) if reverse else i % 5 + 1 for _, reverse in EDMONDSON_ITEMS))
            for i in range(25)]
    assert "5-point" in survey(write_csv(tmp_path / "s.csv", rows)).warnings[0]


def test_missing_item_columns_stop_the_load_naming_them(tmp_path):
    row = response("R1")
    del row[ITEMS[4]]
    with pytest.raises(ValueError, match="difficult to ask"):
        survey(write_csv(tmp_path / "s.csv", [row]))


@pytest.mark.parametrize("encoding, detected", [
    ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("cp1252", "cp1252"),
    ("utf-8", "utf-8"),
])
def test_exports_in_any_common_encoding_read_the_same(tmp_path, encoding, detected):
    path = write_csv(tmp_path / "s.csv", [response("R1", team="Zürich Ops")], encoding=encoding)
    assert detect_encoding(path) == detected
    load = survey(path, groups=("Zürich Ops",))
    assert load.files[0].diagnosis["encoding"] == detected and load.responses == 1 and not load.checked.quarantined


def test_a_latin1_row_in_a_utf8_file_is_quarantined_not_guessed(tmp_path):
    path = write_csv(tmp_path / "s.csv", [response("R1", team="Zürich Ops"), response("R2", team="Zürich Ops")])
    path.write_bytes(path.read_bytes() + "R3,2025-02-10 09:00:00,Zürich Ops,5,5,5,5,5,5,5\n".encode("latin-1"))
    load = survey(path, groups=("Zürich Ops",))
    assert load.files[0].diagnosis["encoding"] == "utf-8" and load.responses == 2
    [bad] = load.checked.quarantined
    assert bad["reason"] == "wrong encoding: bytes 0xFC are not UTF-8 like the rest of the file"
    assert bad["source_line"] == 4 and "Zürich" in bad["raw_row"]


def test_bad_hr_rows_are_quarantined_with_hashed_ids(tmp_path):
    snapshot = {"snapshot_date": "2025-01-01", "employee_id": "E1", "org_unit": "OU-1", "role": "sre",
                "critical_role": "True"}
    rows = [
        snapshot,
        {**snapshot, "employee_id": "E2", "org_unit": "OU-9"},
        {**snapshot, "employee_id": "E3", "snapshot_date": "2030-01-01"},
        {**snapshot, "employee_id": "E4", "critical_role": "maybe"},
        {**snapshot, "employee_id": ""},
        {**snapshot, "role": "staff sre", "org_unit": "ou-1"},  # E1 again on the same date: the later line wins
    ]
    loaded = hr(write_csv(tmp_path / "h.csv", rows))
    reasons = [r.split(":")[0] for r in loaded.quarantine["reason"].to_list()]
    assert sorted(reasons) == ["bad flag", "duplicate", "future date", "missing id", "unknown team"]
    hashed = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise
    # Org units match the team map whatever their case and load in the map's spelling.
    assert loaded.headcount.to_dicts() == [{"snapshot_date": "2025-01-01", "employee_id": hashed("E1"),
                                            "org_unit": "OU-1", "role": "staff sre", "critical_role": "true"}]
    raw = " ".join(loaded.quarantine["raw_row"].to_list())
    assert hashed("E2") in raw and '"E2"' not in raw and '"E1"' not in raw


@pytest.mark.parametrize("damage", ["latin-1 bytes", "unclosed quote", "extra field"])
def test_an_hr_line_the_reader_cannot_split_is_quarantined_without_its_text(tmp_path, damage):
    # The line could not be split into columns, so its id cannot be hashed: the quarantine
    # (in the warehouse, where analysts read) keeps its file, row and reason, not the line.
    header = "employee_id,first_name,email,org_unit,role,critical_role,snapshot_date\n"
    good = "E1,Jürgen,juergen@example.com,OU-1,sre,false,2025-01-01\n"  # a UTF-8 file
    bad = {"latin-1 bytes": "E7,Zoë,zoe.mueller@example.com,OU-1,sre,false,2025-01-01\n".encode("latin-1"),
           "unclosed quote": b'E7,"Zo"e,zoe.mueller@example.com,OU-1,sre,false,2025-01-01\n',
           "extra field": b"E7,Zoe,zoe.mueller@example.com,OU-1,sre,false,2025-01-01,Performance\n"}[damage]
    path = tmp_path / "h.csv"
    path.write_bytes((header + good).encode() + bad + b"E2,Bo,bo@example.com,OU-1,sre,false,2025-01-01\n")
    loaded = hr(path)
    [quarantined] = [q for q in loaded.quarantine.to_dicts() if q["source_line"] == 3]
    assert quarantined["raw_row"] is None and quarantined["reason"]
    assert not any("zoe" in text.lower() or "E7" in text for q in loaded.quarantine.to_dicts()
                   for text in q.values() if isinstance(text, str))
    assert len(loaded.headcount) >= 1


def test_terminations_parse_flags_and_dates(tmp_path):
    rows = [{"employee_id": "E1", "org_unit": "OU-1", "role": "sre", "critical_role": "yes",
             "termination_date": "2025-03-04", "voluntary": "False"},
            {"employee_id": "E2", "org_unit": "OU-1", "role": "sre", "critical_role": "no",
             "termination_date": "2025-13-04", "voluntary": "true"}]
    loaded = hr(write_csv(tmp_path / "t.csv", rows))
    [leaver] = loaded.terminations.to_dicts()
    assert leaver["voluntary"] == "false" and leaver["critical_role"] == "true"
    assert [r.split(":")[0] for r in loaded.quarantine["reason"].to_list()] == ["bad date"]


def test_attrition_divides_voluntary_leavers_by_the_months_average_headcount(warehouse):
    warehouse.raw_rows("config__team_map", [{"team": "Payments", "source": "hr_org_unit", "identifier": "OU-1"}])
    # 10 people open January, 8 open February (2 left in January, one of them voluntarily).
    snapshots = [{"snapshot_date": "2024-01-01", "employee_id": f"E{e}", "org_unit": "OU-1", "role": "sre",
                  "critical_role": str(e < 4).lower()} for e in range(10)]
    snapshots += [{**s, "snapshot_date": "2024-02-01"} for s in snapshots[2:]]
    warehouse.raw_rows("hr__headcount", snapshots)
    warehouse.raw_rows("hr__terminations", [
        {"employee_id": "E0", "org_unit": "OU-1", "role": "sre", "critical_role": "true",
         "termination_date": "2024-01-20", "voluntary": "true"},
        {"employee_id": "E1", "org_unit": "OU-1", "role": "sre", "critical_role": "true",
         "termination_date": "2024-01-25", "voluntary": "false"},
    ])
    warehouse.build_team_month()
    january, february = warehouse.rows("select * from marts.mart_team_month order by period_month")
    assert (january["headcount"], january["avg_headcount"], january["voluntary_leavers"]) == (10, 9.0, 1)
    assert january["voluntary_attrition_rate"] == pytest.approx(1 / 9)
    assert (january["avg_critical_headcount"], january["critical_attrition_rate"]) == (3.0, pytest.approx(1 / 3))
    assert february["avg_headcount"] == 8.0 and february["voluntary_attrition_rate"] == 0


def test_a_generated_five_point_export_loads_clean_and_a_seven_point_setting_warns(tmp_path):
    org = generate(OrgSpec(seed=4, n_teams=4, n_months=6), replace(GroundTruth(), survey_scale_points=5))
    path = write_landing(org, tmp_path)["survey"]
    groups = {t.name for t in org.teams}
    five = read_survey_exports([path], groups, NOW, 5)
    assert not five.checked.quarantined and five.responses == len(org.survey_rows)
    assert {r["answer"] for r in five.checked.accepted} <= {1, 2, 3, 4, 5}
    assert five.partial_responses > 0 and not five.warnings
    assert "5-point" in read_survey_exports([path], groups, NOW, 7).warnings[0]


def test_scale_points_and_encoding_come_from_the_resource_then_the_environment_then_defaults(monkeypatch):
    monkeypatch.delenv("PSAFE_SURVEY_SCALE_POINTS", raising=False)
    monkeypatch.delenv("PSAFE_EXPORT_ENCODING", raising=False)
    unset = LandingFolderResource(path=".", hr_id_salt="salt")
    assert (unset.scale_points, unset.encoding(None)) == (7, "auto")
    monkeypatch.setenv("PSAFE_SURVEY_SCALE_POINTS", "5")
    monkeypatch.setenv("PSAFE_EXPORT_ENCODING", "cp1252")
    assert (unset.scale_points, unset.encoding(None)) == (5, "cp1252")
    assert unset.encoding("utf-16") == "utf-16"  # the mapping file's setting for a file wins
    configured = LandingFolderResource(path=".", hr_id_salt="salt", survey_scale_points=7, export_encoding="utf-8")
    assert (configured.scale_points, configured.encoding(None)) == (7, "utf-8")
    monkeypatch.setenv("PSAFE_SURVEY_SCALE_POINTS", "seven")
    with pytest.raises(ValueError, match="PSAFE_SURVEY_SCALE_POINTS must be 5 or 7, not 'seven'"):
        unset.scale_points
    monkeypatch.setenv("PSAFE_EXPORT_ENCODING", "ebcdic")
    with pytest.raises(ValueError, match="'ebcdic' is not one of"):
        unset.encoding(None)


REVERSED = {number for number, (_, reverse) in enumerate(EDMONDSON_ITEMS, start=1) if reverse}
LABELS5 = ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"]


def consistent(level, k=7):
    """Answers of a respondent at agreement ``level``, mirrored on reverse-keyed items."""
    return tuple(k + 1 - level if n in REVERSED else level for n in range(1, 8))


def test_a_non_whole_answer_or_a_number_its_label_contradicts_is_quarantined_not_truncated(tmp_path):
    rows = [response("R1", answers=("4", "4.0", "4 - Agree", "5 - Strongly agree", "2. Disagree", "3", "1")),
            response("R2", answers=("4.5", "4", "4", "4", "4", "4", "4")),
            response("R3", answers=("4", "3.7", "4", "4", "4", "4", "4")),
            response("R4", answers=("4", "4", "1 - Strongly agree", "4", "4", "4", "4"))]
    load = survey(write_csv(tmp_path / "s.csv", rows), scale_points=5)
    assert {r["item_no"]: r["answer"] for r in load.checked.accepted} == {1: 4, 2: 4, 3: 4, 4: 5, 5: 2, 6: 3, 7: 1}
    reasons = {json.loads(q["raw_row"])["response_id"]: q["reason"] for q in load.checked.quarantined}
    assert reasons["R2"].startswith("not a whole number: item 1 answer '4.5'")
    assert reasons["R3"].startswith("not a whole number: item 2 answer '3.7'")
    assert reasons["R4"].startswith("contradictory answer: item 3 answer '1 - Strongly agree'")
    assert "the number 1" in reasons["R4"] and "'Strongly agree'" in reasons["R4"]


def test_five_point_labels_beside_a_seven_point_export_warn_naming_that_file(tmp_path):
    labelled = write_csv(tmp_path / "pulse_q1_labels.csv", [
        response(f"A{i}", answers=tuple(LABELS5[a - 1] for a in consistent(1 + i % 5, 5))) for i in range(24)])
    numeric = write_csv(tmp_path / "pulse_q2.csv", [
        response(f"B{i}", submitted="2025-05-10 09:00:00", answers=consistent(1 + i % 7)) for i in range(24)])
    load = read_survey_exports([labelled, numeric], {"Payments"}, NOW, 7)
    [warning] = load.warnings
    assert "pulse_q1_labels.csv" in warning and "pulse_q2.csv" not in warning and "5-point" in warning


def write_xlsx(path, rows):
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def test_excel_serial_dates_in_a_workbook_are_read_as_dates(tmp_path):
    # A date column formatted General: Excel's serial numbers (days since 1899-12-30).
    header = ["response_id", "submitted_at", "team", *ITEMS]
    rows = [header] + [[f"R{i}", 45698 + i / 100, "Payments", *consistent(2 + i % 5)] for i in range(6)]
    load = survey(write_xlsx(tmp_path / "survey.xlsx", rows))
    assert not load.checked.quarantined and load.responses == 6
    assert sorted({r["submitted_at"] for r in load.checked.accepted})[:2] == [
        datetime(2025, 2, 10), datetime(2025, 2, 10, 0, 14, 24)]


def test_a_date_format_for_text_dates_is_not_applied_to_a_workbooks_date_cells(tmp_path):
    header = ["response_id", "submitted_at", "team", *ITEMS]
    cells = write_xlsx(tmp_path / "wave2.xlsx", [header] + [
        [f"X{i}", datetime(2025, 5, 12, 9, i), "Payments", *consistent(2 + i % 5)] for i in range(5)])
    text = write_csv(tmp_path / "wave1.csv", [response(f"T{i}", submitted=f"02/10/2025 09:0{i}:00 AM")
                                                 for i in range(5)])
    settings = Settings(date_format="%m/%d/%Y %I:%M:%S %p")
    load = read_survey_exports([text, cells], {"Payments"}, NOW, settings=settings)
    assert not load.checked.quarantined and load.responses == 10
    assert {r["submitted_at"] for r in load.checked.accepted if r["response_id"] == "X3"} == {
        datetime(2025, 5, 12, 9, 3)}


def qualtrics_tsv_rows(n):
    meta = ["StartDate", "EndDate", "Status", "Progress", "Finished", "RecordedDate", "ResponseId"]
    rows = [meta + [f"Q1_{k}" for k in range(1, 8)] + ["Team"],
            meta + [f"How much do you agree? - {text}" for text in ITEMS] + ["Team"],
            [f'{{"ImportId":"{m[0].lower() + m[1:]}"}}' for m in meta] + [f'{{"ImportId":"QID1_{k}"}}'
                                                                         for k in range(1, 8)] + ['{"ImportId":"T"}']]
    rows += [["2025-02-10 09:00:00", "2025-02-10 09:05:00", "0", "100", "1", "2025-02-10 09:05:00", f"R_{i:05d}",
              *map(str, consistent(2 + i % 5)), "Payments"] for i in range(n)]
    return rows


@pytest.mark.parametrize("n", [12, 1500], ids=["small", "longer than the peek"])
def test_a_qualtrics_utf16_tsv_with_bom_and_crlf_is_recognised_and_loads(tmp_path, n):
    path = tmp_path / "Psych_Safety_Q1_2025.tsv"
    text = "".join("\t".join(row) + "\r\n" for row in qualtrics_tsv_rows(n))
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    assert n < 100 or path.stat().st_size > PEEK_BYTES
    assert classify(path, read_mapping(tmp_path)) == "survey"
    load = survey(path)
    assert load.files[0].preset == "qualtrics" and load.responses == n and not load.checked.quarantined


def test_excels_sep_line_sets_the_delimiter_and_is_not_a_header(tmp_path):
    header = ["response_id", "submitted_at", "team", *ITEMS]
    body = [header, *[[f"R{i}", "2025-02-10 09:00:00", "Payments", *map(str, consistent(2 + i % 5))]
                      for i in range(4)], ["R9", "2025-02-10 09:00:00", "Payments", "4"]]
    path = tmp_path / "survey_excel_de.csv"
    path.write_text("sep=;\r\n" + "".join(";".join(row) + "\r\n" for row in body), encoding="utf-8-sig")
    assert classify(path, read_mapping(tmp_path)) == "survey"
    load = survey(path)
    assert load.files[0].diagnosis["delimiter"] == "semicolon" and load.responses == 4
    # Rows as Excel shows them: the sep line is no row, the header is row 1, R9 row 6.
    [short] = load.checked.quarantined
    assert short["source_line"] == 6 and short["reason"].startswith("malformed row")
    assert {r["source_line"] for r in load.checked.accepted if r["response_id"] == "R0"} == {2}
    roster = tmp_path / "hr_headcount.csv"
    roster.write_text("sep=;\nsnapshot_date;employee_id;org_unit;role;critical_role\n"
                      "2025-01-01;E1;OU-1;sre;true\n")
    assert classify(roster, read_mapping(tmp_path)) == "hr"
    assert hr(roster).headcount.height == 1


def limesurvey_rows(first_day, ids, level=3, edited=()):
    """A LimeSurvey CSV export (Export responses, full question text headings): Response ID
    numbers each survey's responses from 1."""
    stem = "Please rate your agreement with the following statements."
    rows = [["Response ID", "Date submitted", "Last page", "Start language", "Seed", "Date started",
             "Date last action", "team", *[f"{stem} [{text}]" for text in ITEMS]]]
    for i in ids:
        moment = f"{first_day} 09:{i:02d}:00"
        answers = consistent(5 if i in edited else 1 + (level + i) % 5, 5)
        rows.append([str(i), moment, "2", "en", str(1000 + i), moment, moment, "Payments", *map(str, answers)])
    return rows


def test_limesurvey_surveys_numbering_responses_from_one_both_load_and_a_redownload_merges(tmp_path):
    paths = {}
    for name, rows in (("results-survey451236.csv", limesurvey_rows("2025-02-10", range(1, 13))),
                       ("results-survey782291.csv", limesurvey_rows("2025-05-12", range(1, 11), level=1)),
                       # The first survey downloaded again later: one more response, response 2 edited.
                       ("results-survey451236 (1).csv", limesurvey_rows("2025-02-10", range(1, 14), edited={2}))):
        paths[name] = tmp_path / name
        paths[name].write_text("".join(",".join(f'"{cell}"' for cell in row) + "\r\n" for row in rows))
    load = read_survey_exports(list(paths.values()), {"Payments"}, NOW, 5)
    assert [f.preset for f in load.files] == ["limesurvey"] * 3
    by_file = {}
    for row in load.checked.accepted:
        by_file.setdefault(row["source_file"], set()).add(row["response_id"])
    # Both surveys' responses 1..10 load; the re-download adds response 13 and supersedes response 2.
    assert load.responses == 12 + 10 + 1
    assert {name: len(ids) for name, ids in by_file.items()} == {
        "results-survey451236.csv": 11, "results-survey782291.csv": 10, "results-survey451236 (1).csv": 2}
    assert load.identical_copies == 11
    [superseded] = load.checked.quarantined
    assert superseded["source_file"] == "results-survey451236.csv" and superseded["reason"].startswith(
        "duplicate: response_id 2@2025-02-10T09:02:00")


def test_a_changed_time_zone_does_not_count_a_limesurvey_surveys_responses_again(tmp_path):
    """LimeSurvey responses are told apart by number and submission time: a time_zone set after
    the file loaded moves every time, and every response would look new (the frozen waves
    would count them again). The load stops naming the file and the setting until restored."""
    landing = tmp_path / "landing"
    landing.mkdir()
    rows = limesurvey_rows("2025-02-10", range(1, 13))
    (landing / "results-survey451236.csv").write_text(
        "".join(",".join(f'"{cell}"' for cell in row) + "\r\n" for row in rows))
    os.utime(landing / "results-survey451236.csv", (time.time() - 3600, time.time() - 3600))
    (landing / "team_map.yml").write_text("teams:\n  - team: Payments\n    survey_groups: [Payments]\n")
    resources = {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", survey_scale_points=5),
                 "duckdb": WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))}

    def load():
        return dg.materialize([team_map, survey_responses], resources=resources, raise_on_error=False)

    assert load().success
    (landing / "export_mapping.yml").write_text("survey:\n  time_zone: Europe/Berlin\n")
    stopped = load()
    [failure] = [e.step_failure_data.user_failure_data.description for e in stopped.all_events
                 if e.event_type_value == "STEP_FAILURE"]
    assert "results-survey451236.csv: all 12 responses it held when last loaded now have other submission times" in failure
    assert "time_zone or date_format in export_mapping.yml changed" in failure
    (landing / "export_mapping.yml").write_text(
        'files:\n  - match: "results-survey9*.csv"\n    time_zone: Europe/Berlin\n')
    assert load().success
