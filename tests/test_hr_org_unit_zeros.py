"""An HR export whose org unit codes lost their leading zeros (a cost centre 0100 saved through
a spreadsheet as the number 100) against a team map that writes them as the HR tool does (names
angle of the eighth trial): the rows are quarantined as of an unknown team, as before, and the
reason names the team map's org unit that differs only in leading zeros, and what to do."""

import os
from datetime import UTC, datetime

from conftest import landing_beside_warehouse
from hr_roster import load_hr_exports
from test_hr_roster_columns import warehouse_rows

ROSTER = ("Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type\n"
          "1,100,Engineer,2023-01-09,,\n"
          "2,0200,Engineer,2023-01-09,,\n"
          "3,0300,Engineer,2023-01-09,,\n"
          "4,00400,Engineer,2023-01-09,,\n")


def test_an_org_unit_that_lost_its_leading_zeros_is_quarantined_naming_the_team_maps_code(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments", "Search", "Web"],
                                                            "source": ["hr_org_unit"] * 3,
                                                            "identifier": ["0100", "0200", "400"]})
    (folder / "bamboohr.csv").write_text(ROSTER)
    stamp = datetime.now(UTC).timestamp() - 3600  # settled: older than the landing folder's settle time
    os.utime(folder / "bamboohr.csv", (stamp, stamp))
    load_hr_exports(folder, warehouse)
    assert warehouse_rows(warehouse, "select distinct org_unit from raw.hr__headcount") == [("0200",)]
    assert sorted(warehouse_rows(warehouse, "select distinct reason from quarantine.hr__headcount")) == [
        (("unknown team: org unit '00400' is not in the team map's hr_org_units (the team map has '400', which "
         "differs only in leading zeros: write it in the team map as the export does)"),),
        ("unknown team: org unit '0300' is not in the team map's hr_org_units",),
        (("unknown team: org unit '100' is not in the team map's hr_org_units (the team map has '0100', which differs "
         "only in leading zeros: a spreadsheet saving the code as a number drops them: export it as text, or write "
         "it in the team map as the export does)"),)]
