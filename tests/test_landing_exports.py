"""Survey and HR export loading: item matching, scoring, encodings, and quarantine of bad rows
(the project's own layouts: the generic survey preset and the HR snapshot files)."""

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from assets.landing.hr import read_hr_file
from assets.landing.mapping import Settings
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import detect_encoding, take_snapshot
from assets.landing.survey import EDMONDSON_ITEMS, read_survey_exports
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
        response("R2", answers=(5, 5, 8, 5, 5, 5, 5)),  # out of range on 1..7
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
    assert reasons["R2@3"].startswith("out of range: item 3 answer '8'")
    assert reasons["R3@4"].startswith("unknown answer: item 2 answer 'x'")
    assert reasons["R4@5"].startswith("unknown team: survey group 'Atlantis'")
    assert reasons["R5@6"].startswith("future date")
    assert reasons["R6@7"].startswith("bad date")
    assert reasons["R7@8"].startswith("no answers")
    assert reasons["R8@9"] == "duplicate: response_id R8 also on line 10, which is kept"
    assert load.checked.reasons() == {"out of range": 1, "unknown answer": 1, "unknown team": 1, "future date": 1,
                                      "bad date": 1, "no answers": 1, "duplicate": 1}
    kept = {r["response_id"]: r["answer"] for r in load.checked.accepted}
    assert kept == {"R1": 5, "R8": 4}
    assert load.responses + len(load.checked.quarantined) == len(rows)


def test_a_six_on_a_five_point_export_is_out_of_range(tmp_path):
    load = survey(write_csv(tmp_path / "s.csv", [response("R1", answers=(5, 6, 5, 5, 5, 5, 5))]), scale_points=5)
    assert load.checked.reasons() == {"out of range": 1} and not load.checked.accepted


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
