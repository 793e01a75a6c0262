"""The warehouse reads and computes times in UTC whatever the host's time zone."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A trigger log entry whose first alert's payload timestamp (the onset) and an "impact started"
# value carry no offset, written through the pipeline's warehouse connection.
WRITE_AND_READ = textwrap.dedent("""
    import sys
    from assets.warehouse.raw_tables import ensure_raw_table, ensure_schema, upsert_json_records
    from assets.warehouse.resource import WarehouseResource

    entry = {"id": "R1", "type": "trigger_log_entry", "created_at": "2025-03-30T01:20:00Z",
             "incident": {"id": "P1", "type": "incident_reference"},
             "channel": {"type": "api", "cef_details": {"creation_time": "2025-03-30T01:10:00"}},
             "agent": {"id": "S1", "type": "service_reference"}}
    change = {"id": "R2", "type": "custom_field_value_change_log_entry", "created_at": "2025-03-30T01:25:00Z",
              "incident": {"id": "P1", "type": "incident_reference"},
              "channel": {"type": "api", "changeset": {"customer_fields": [
                  {"name": "impact_started", "value": "2025-03-30T01:05:00"}]}}}
    with WarehouseResource(database=sys.argv[1]).get_connection() as conn:
        ensure_schema(conn, "raw")
        ensure_raw_table(conn, "pagerduty__log_entries")
        upsert_json_records(conn, "pagerduty__log_entries", [entry, change])
        print(conn.sql("select epoch(trigger.created_at - trigger.alert_timestamp), "
                       "epoch(trigger.created_at - change.impact_started_at) "
                       "from raw.pagerduty__log_entries as trigger, raw.pagerduty__log_entries as change "
                       "where trigger.id = 'R1' and change.id = 'R2'").fetchone())
""")


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_a_time_without_an_offset_is_utc_on_a_host_in_any_zone(tmp_path: Path, zone: str):
    env = {**os.environ, "TZ": zone, "PSAFE_RESTRICTED_WAREHOUSE": str(tmp_path / "restricted" / "r.duckdb")}
    (tmp_path / "restricted").mkdir(mode=0o700)
    done = subprocess.run([sys.executable, "-c", WRITE_AND_READ, str(tmp_path / "warehouse.duckdb")], env=env,
                          cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # 10 and 15 minutes before the trigger, as on a host in UTC.
    assert done.stdout.strip().splitlines()[-1] == "(600.0, 900.0)"
