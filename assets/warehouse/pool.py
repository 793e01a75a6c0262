"""The warehouse's Dagster concurrency pool.

DuckDB lets one process open a database file while any process writes to it, and a read-only
connection in another process blocks writers too. Every asset and asset check that opens the
warehouse therefore declares ``pool=WAREHOUSE_POOL``, and the instance gives the pool one slot
(``concurrency: pools: default_limit: 1`` in deploy/dagster.yaml): steps of overlapping runs,
backfills and multiprocess runs then queue for the warehouse instead of failing with "Could
not set lock". tests/test_warehouse_pool.py checks that nothing that opens it is left out.
"""

WAREHOUSE_POOL = "duckdb_warehouse"
