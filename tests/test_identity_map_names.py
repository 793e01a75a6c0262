"""The identity map's employees that no HR headcount snapshot lists are named by their entry in
identity_map.yml (names angle of the eighth trial, N1): the map is written by hand and the
warehouse holds pseudonyms only, so a count alone leaves the user unable to find the wrong
entry. An id that matches the HR export's but for its case, spaces or leading zeros is said so.
Nothing of the HR export is named but the form of a written id it has."""

import csv
import io
import os
from pathlib import Path

import dagster as dg
from conftest import landing_beside_warehouse

from assets.landing.assets import hr_exports
from assets.landing.identity import identity_map, people_are_in_the_hr_roster
from assets.landing.resource import LandingFolderResource
from assets.warehouse.resource import WarehouseResource

SALT = "salt-salt-salt-salt-salt-salt-salt"
# The HR roster: E000001..E000006 in org unit Ops, as Workday writes its ids, and one of 8 digits.
ROSTER_IDS = [f"E{number:06d}" for number in range(1, 7)] + ["00012345"]


def roster(folder: Path) -> None:
    """A BambooHR roster of ``ROSTER_IDS``, settled (written long ago)."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["Employee #", "Department", "Job Title", "Employment Status", "Hire Date", "Termination Date",
                     "Termination Type"])
    for employee in ROSTER_IDS:
        writer.writerow([employee, "Ops", "Engineer", "Full-Time", "2023-06-01", "", ""])
    (folder / "roster.csv").write_text(text.getvalue(), encoding="utf-8")
    os.utime(folder / "roster.csv", (1e9, 1e9))


def identity_map_file(folder: Path, employee_ids: list[str]) -> None:
    (folder / "identity_map.yml").write_text("people:\n" + "".join(
        f"  - employee_id: '{employee}'\n    jira_account_ids: ['712020:acc{position}']\n"
        for position, employee in enumerate(employee_ids, start=1)), encoding="utf-8")


def resources(folder: Path, warehouse: Path) -> dict:
    return {"landing": LandingFolderResource(path=str(folder), hr_id_salt=SALT, settle_seconds=0),
            "duckdb": WarehouseResource(database=str(warehouse))}


def checked(folder: Path, warehouse: Path) -> dg.AssetCheckEvaluation:
    """The HR roster, the identity map and its check materialised on the landing ``folder``."""
    result = dg.materialize([hr_exports, identity_map, people_are_in_the_hr_roster],
                            resources=resources(folder, warehouse),
                            run_config={"ops": {"hr_exports": {"config": {"accept_shrunk_exports": []}}}})
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_entries_not_in_hr_are_named_with_the_form_the_hr_export_has(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Ops"], "source": ["hr_org_unit"],
                                                            "identifier": ["Ops"]})
    roster(folder)
    # Entry 1 and 6 are right (6 without its leading zeros, as numbers are compared); 2 has a
    # space, 3 lost leading zeros, 4 is in lower case, 5 is nobody of the HR export.
    # 7 is an email address the HR export does not have: named by its position only, as no
    # email address is kept in clear outside the restricted file.
    identity_map_file(folder, ["E000001", "E 000002", "E03", "e000004", "X999", "12345", "jane.doe@example.com"])
    evaluation = checked(folder, warehouse)
    assert not evaluation.passed
    entries = [
        "entry 2 (employee_id 'E 000002'; ignoring spaces it matches the HR export's 'E000002')",
        "entry 3 (employee_id 'E03'; ignoring leading zeros it matches the HR export's 'E000003')",
        "entry 4 (employee_id 'e000004'; ignoring case it matches the HR export's 'E000004')",
        "entry 5 (employee_id 'X999')",
        "entry 7 (employee_id: an email address)"]
    assert evaluation.metadata["entries_not_in_hr"].value == entries
    assert evaluation.metadata["not_in_hr"].value == 5
    assert evaluation.description == (
        "5 of the 7 employees of the identity map are in no HR headcount snapshot, so their tickets count for no "
        "team; correct their employee ids in identity_map.yml (ids other than numbers and email addresses match "
        "as the HR export writes them, case included): " + "; ".join(entries))
    # No id of the HR export but the forms of the written ones: E000005, E000006 and 00012345 stay unsaid.
    said = evaluation.description + str(evaluation.metadata["entries_not_in_hr"].value)
    assert not [employee for employee in ("E000005", "E000006", "00012345", "jane.doe") if employee in said]


def test_entries_of_a_map_changed_since_it_was_loaded_are_counted_and_the_reload_asked_for(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Ops"], "source": ["hr_org_unit"],
                                                            "identifier": ["Ops"]})
    roster(folder)
    identity_map_file(folder, ["E000001", "e000004", "X999"])
    assert checked(folder, warehouse).metadata["not_in_hr"].value == 2
    # X999 corrected in the file, not loaded yet: the warehouse still holds it, the file names only e000004.
    identity_map_file(folder, ["E000001", "e000004", "E000005"])
    result = dg.materialize([identity_map, people_are_in_the_hr_roster], resources=resources(folder, warehouse),
                            selection=dg.AssetSelection.checks(people_are_in_the_hr_roster))
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.metadata["entries_not_in_hr"].value == [
        "entry 2 (employee_id 'e000004'; ignoring case it matches the HR export's 'E000004')"]
    assert evaluation.description.endswith(
        "; 1 of them are no longer in identity_map.yml as it is now (it changed since it was loaded): load it "
        "again to have them named")


def test_a_map_that_cannot_be_read_since_it_was_loaded_is_said_so_not_asked_to_reload(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Ops"], "source": ["hr_org_unit"],
                                                            "identifier": ["Ops"]})
    roster(folder)
    identity_map_file(folder, ["E000001", "X999"])
    checked(folder, warehouse)
    # Edited since, into a file that does not load (an entry without an employee id).
    (folder / "identity_map.yml").write_text("people:\n  - jira_account_ids: ['712020:acc1']\n", encoding="utf-8")
    result = dg.materialize([identity_map, people_are_in_the_hr_roster], resources=resources(folder, warehouse),
                            selection=dg.AssetSelection.checks(people_are_in_the_hr_roster))
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.metadata["entries_not_in_hr"].value == []
    assert "; identity_map.yml cannot be read as it is now, so none is named (" in evaluation.description
    assert "load it again" not in evaluation.description


def test_a_map_whose_employees_are_all_in_hr_passes(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Ops"], "source": ["hr_org_unit"],
                                                            "identifier": ["Ops"]})
    roster(folder)
    identity_map_file(folder, ["E000001", "E000002", "12345"])
    evaluation = checked(folder, warehouse)
    assert evaluation.passed
    assert evaluation.metadata["entries_not_in_hr"].value == []
