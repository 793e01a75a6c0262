"""Steps wait for another process holding the warehouse (a notebook's read), dbt's steps too."""

import subprocess
import sys
import time

import pytest

# A reader as a notebook cell is one: open the warehouse read-only, read, hold it a moment, close.
HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
conn.sql("select count(*) from staging.stg_config__team_map").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


@pytest.mark.slow
def test_a_dbt_command_waits_for_a_reader_holding_the_warehouse(warehouse):
    warehouse.build("stg_config__team_map")
    reader = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse.path), "3"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert reader.stdout.readline().strip() == "holding"
        started = time.monotonic()
        result = warehouse.run("run", "--select", "stg_config__team_map")
        waited = time.monotonic() - started
    finally:
        reader.wait(timeout=60)
    assert result.success and reader.returncode == 0
    # It ran once the reader let go, not alongside it (DuckDB allows one writer, no readers then).
    assert waited > 2
