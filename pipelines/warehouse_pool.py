"""DuckDB allows one process to open a database file for writing, and a reader in another
process blocks writers too. Every step that opens the warehouse therefore takes a slot of one
Dagster concurrency pool whose limit is 1 (``concurrency: pools: default_limit: 1`` in the
instance's dagster.yaml, see deploy/dagster.yaml): the whole graph under the multiprocess
executor, overlapping runs and backfills then queue for the warehouse instead of failing with
"Could not set lock".

The pool is applied here, to every asset that requires the ``duckdb`` resource, rather than in
each asset decorator, so that no asset touching the warehouse can be added without it.
"""

import copy

import dagster as dg

WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_RESOURCE_KEY = "duckdb"


def in_warehouse_pool(assets_def: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``assets_def`` with its op in the warehouse pool if it requires the warehouse resource."""
    op = assets_def.op
    if WAREHOUSE_RESOURCE_KEY not in op.required_resource_keys or op.pool == WAREHOUSE_POOL:
        return assets_def
    if op.pool:
        raise dg.DagsterInvalidDefinitionError(
            f"{op.name} writes the DuckDB warehouse but is in pool {op.pool!r}; it must be in "
            f"{WAREHOUSE_POOL!r} so that only one process opens the warehouse at a time"
        )
    # Dagster has no public way to set the pool of an existing op: copy the op with its pool
    # set, as the asset decorator's `pool=` would have. tests/test_warehouse_pool.py checks
    # that every step that opens the warehouse ends up in the pool.
    pooled_op = copy.copy(op)
    pooled_op._pool = WAREHOUSE_POOL
    return assets_def.__class__.dagster_internal_init(
        **{**assets_def.get_attributes_dict(), "node_def": pooled_op}
    )
