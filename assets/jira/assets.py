"""Jira ingestion: issues with their full changelogs."""


from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.jira.resource import JiraResource
from assets.warehouse.raw_tables import upsert_json_records


class JiraSyncConfig(dg.Config):
    """Which stretch of history to sync (``history_start`` as an ISO date, UTC)."""

    history_start: str = "2024-01-01"


@dg.asset(key=["raw", "jira__issues"], group_name="jira", compute_kind="jira")
def jira_issues(
    context: dg.AssetExecutionContext,
    config: JiraSyncConfig,
    jira: JiraResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Jira issues updated since `history_start`, each with its complete changelog, from
    `/rest/api/3/search/jql` paged by `nextPageToken`."""
    start = datetime.fromisoformat(config.history_start).replace(tzinfo=UTC)
    jql = f"updated >= {int(start.timestamp() * 1000)} ORDER BY updated ASC"
    client = jira.get_client()
    batch: list[dict] = []
    loaded = 0
    with duckdb.get_connection() as conn:
        for issue in jira.iter_issues(client, jql):
            batch.append(issue)
            if len(batch) >= 2_000:
                loaded += upsert_json_records(conn, "jira__issues", batch)
                batch.clear()
                context.log.info(f"issues: {loaded} loaded so far")
        loaded += upsert_json_records(conn, "jira__issues", batch)
    context.log.info(f"issues: loaded {loaded} matching `{jql}`")
    return dg.MaterializeResult(metadata={"rows": loaded, "jql": jql})
