"""A warehouse written by a release before 2026-12-07 holds, in quarantine.hr__*, the text of HR
lines the CSV reader could not split: an employee's id, name and email in clear, in the file
analysts read. The first HR load of this release removes that text (rows the loader read keep
their JSON with the id hashed), and the warehouse file is rewritten, since DuckDB leaves a
changed row's old bytes in the file (fifth adversarial trial, D3)."""

import logging
import os
import time

import dagster as dg
import duckdb
from conftest import landing_beside_warehouse

from assets.landing.assets import hr_exports
from assets.landing.resource import LandingFolderResource
from assets.warehouse.resource import WarehouseResource

EMAIL = b"jane.doe@example.com"
ROSTER = ("Employee #,Department,Job Title,Employment Status,Hire Date,Termination Date,Termination Type\n"
          "101,Payments,Engineer,Full-Time,2023-05-01,,\n")


def test_the_text_an_earlier_release_quarantined_is_removed_from_the_warehouse_file(tmp_path):
    landing, warehouse = landing_beside_warehouse(
        tmp_path, {"team": ["Payments"], "source": ["hr_org_unit"], "identifier": ["Payments"]})
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema quarantine")
        conn.execute("create table quarantine.hr__headcount (source_file varchar, source_line bigint, reason varchar, "
                     "raw_row varchar, loaded_at timestamptz)")
        conn.execute("insert into quarantine.hr__headcount values "
                     "('old.csv', 7, 'malformed quote', '2024-12-01,E990001,\"Jane Q. Doe, jane.doe@example.com', now()),"
                     "('old.csv', 9, 'unknown team', '{\"employee_id\": \"6cc541521dc59fba1a0e\"}', now())")
        conn.execute("checkpoint")
    assert warehouse.read_bytes().count(EMAIL) == 1
    (landing / "roster.csv").write_text(ROSTER)
    past = time.time() - 3600
    os.utime(landing / "roster.csv", (past, past))

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([hr_exports], instance=instance, resources={
        "landing": LandingFolderResource(path=str(landing), hr_id_salt="salt"),
        "duckdb": WarehouseResource(database=str(warehouse))})
    assert result.success
    assert warehouse.read_bytes().count(EMAIL) == 0
    warnings = [record.user_message for record in instance.all_logs(result.run_id)
                if record.level == logging.WARNING and "quarantined HR lines" in record.user_message]
    expected = ("Removed the text of 1 quarantined HR lines that an earlier release stored in clear (an employee's "
                "id, name, email or reason, in the file analysts read)")
    assert [w.partition(";")[0] for w in warnings] == [expected]
