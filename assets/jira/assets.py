"""Jira ingestion: issues with their full changelogs, and the ticket classification rules.

Issues sync incrementally by `updated`: the high-water mark (the latest `updated` loaded)
is kept in ``raw._sync_state`` and committed with each page of rows, and the next run asks
for `updated >= mark - lookback_minutes`, so edits to old issues are picked up too.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.api_retry import API_ASSET_RETRY_POLICY, failing_clearly
from assets.jira.classification import read_rules, rules_frame
from assets.jira.resource import JiraResource
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import (
    read_high_water_mark,
    replace_table,
    reset_high_water_mark,
    warehouse_connection,
    write_batch,
)

STREAM = "jira__issues"


class JiraSyncConfig(dg.Config):
    """``history_start`` (ISO date, UTC) bounds the first, full sync; later runs continue
    from the stored high-water mark, ``lookback_minutes`` earlier. ``full_refresh`` forgets
    the mark and syncs from ``history_start`` again."""

    history_start: str = "2024-01-01"
    lookback_minutes: int = 60
    full_refresh: bool = False


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["raw", "jira__issues"],
    group_name="jira",
    kinds={"jira", "duckdb"},
    retry_policy=API_ASSET_RETRY_POLICY,
)
def jira_issues(
    context: dg.AssetExecutionContext,
    config: JiraSyncConfig,
    jira: JiraResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Jira issues updated since the last sync (or `history_start`), each with its complete
    changelog, from `/rest/api/3/search/jql` paged by `nextPageToken`."""
    history_start = datetime.fromisoformat(config.history_start).replace(tzinfo=UTC)
    loaded = 0
    with warehouse_connection(duckdb) as conn, failing_clearly():
        client = jira.get_client(context.log.warning)
        # An issue edited while we page moves behind the cursor and can push the one after it
        # past a page boundary; capping the mark at the server's time when the sync began
        # makes the next run look again at everything updated before then.
        started = jira.server_time(client, context.log.warning)
        if config.full_refresh:
            reset_high_water_mark(conn, STREAM)
        mark = read_high_water_mark(conn, STREAM)
        since = history_start if mark is None else max(history_start, mark - timedelta(minutes=config.lookback_minutes))
        mode = "full" if mark is None else "incremental"
        jql = f"updated >= {int(since.timestamp() * 1000)} ORDER BY updated ASC, key ASC"
        context.log.info(f"issues: {mode} sync, `{jql}`")
        newest = mark
        def stored_histories(issue_id: str) -> list[dict]:
            if mark is None:
                return []
            row = conn.execute("select payload -> 'changelog' -> 'histories' from raw.jira__issues where id = ?",
                               [issue_id]).fetchone()
            return json.loads(row[0]) if row and row[0] else []

        for page in jira.iter_issues(client, jql, context.log.warning, stored_histories):
            for issue in page:
                updated = datetime.strptime(issue["fields"]["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
                newest = updated if newest is None or updated > newest else newest
            # Pages come in `updated` order, so everything up to this page's newest is loaded.
            loaded += write_batch(conn, "jira__issues", page, stream=STREAM,
                                  high_water_mark=min(newest, started) if newest else None)
            if loaded and loaded % 5_000 < len(page):
                context.log.info(f"issues: {loaded} loaded so far")
    mark = min(newest, started) if newest else None
    context.log.info(f"issues: loaded {loaded} ({mode}), high-water mark {mark}")
    return dg.MaterializeResult(metadata={"rows": loaded, "mode": mode, "jql": jql, "high_water_mark": str(mark)})


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "config__ticket_classification"], group_name="jira", kinds={"yaml", "duckdb"})
def ticket_classification_rules(context: dg.AssetExecutionContext, jira: JiraResource,
                                duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The proactive/reactive ticket classification rules, one row per rule in file order,
    from the YAML file named by the `jira` resource's `classification_rules_path`."""
    path = Path(jira.classification_rules_path)
    rows = read_rules(path)
    with warehouse_connection(duckdb) as conn:
        replace_table(conn, "raw", "config__ticket_classification", rules_frame(rows))
    context.log.info(f"{len(rows)} classification rules from {path}")
    return dg.MaterializeResult(metadata={"rules": len(rows), "path": str(path)})
