"""PagerDuty ingestion: teams, services, incidents and their log-entry timelines.

Incidents and log entries sync incrementally. Each keeps a high-water mark (the latest
``created_at`` loaded) in ``raw._sync_state``, committed with the rows of every completed
time window; the next run starts ``lookback_minutes`` before it, so late-arriving records
are not missed and overlaps are absorbed by the upserts. New log entries of incidents
created long ago (resolved, merged or reopened later) come with the log-entry sync; their
incidents are then fetched again so the raw incident objects stay current.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.api_retry import API_ASSET_RETRY_POLICY, failing_clearly
from assets.pagerduty.resource import PagerDutyResource
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import (
    read_high_water_mark,
    reset_high_water_mark,
    upsert_json_records,
    warehouse_connection,
    write_batch,
)

BATCH_ROWS = 5_000


class PagerDutySyncConfig(dg.Config):
    """``history_start`` (ISO date, UTC) bounds the first, full sync; later runs continue
    from the stored high-water mark, ``lookback_minutes`` earlier. ``full_refresh`` forgets
    the mark and syncs from ``history_start`` again."""

    history_start: str = "2024-01-01"
    lookback_minutes: int = 60
    full_refresh: bool = False


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "pagerduty__teams"], group_name="pagerduty", kinds={"pagerduty", "duckdb"},
          retry_policy=API_ASSET_RETRY_POLICY)
def pagerduty_teams(
    context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every PagerDuty team, as returned by `GET /teams`."""
    with failing_clearly():
        teams = list(pagerduty.iter_all(pagerduty.get_client(), "teams", context.log.warning))
    with warehouse_connection(duckdb) as conn:
        upsert_json_records(conn, "pagerduty__teams", teams)
    context.log.info(f"loaded {len(teams)} teams")
    return dg.MaterializeResult(metadata={"rows": len(teams)})


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "pagerduty__services"], group_name="pagerduty", kinds={"pagerduty", "duckdb"},
          retry_policy=API_ASSET_RETRY_POLICY)
def pagerduty_services(
    context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every PagerDuty service with its *current* owning teams, as returned by
    `GET /services` (incidents are attributed to the team at trigger time, not this one)."""
    with failing_clearly():
        services = list(pagerduty.iter_all(pagerduty.get_client(), "services", context.log.warning))
    with warehouse_connection(duckdb) as conn:
        upsert_json_records(conn, "pagerduty__services", services)
    context.log.info(f"loaded {len(services)} services")
    return dg.MaterializeResult(metadata={"rows": len(services)})


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "pagerduty__log_entries"], group_name="pagerduty", kinds={"pagerduty", "duckdb"},
          retry_policy=API_ASSET_RETRY_POLICY)
def pagerduty_log_entries(
    context: dg.AssetExecutionContext,
    config: PagerDutySyncConfig,
    pagerduty: PagerDutyResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Incident timelines (trigger, acknowledge, resolve, custom-field changes, ...) from
    `GET /log_entries`, incrementally by entry time; durations are rebuilt from these,
    never from the incident object."""
    return _sync_windowed(context, config, pagerduty, duckdb, "log_entries", "pagerduty__log_entries")


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["raw", "pagerduty__incidents"],
    deps=[dg.AssetKey(["raw", "pagerduty__log_entries"])],
    group_name="pagerduty",
    kinds={"pagerduty", "duckdb"},
    retry_policy=API_ASSET_RETRY_POLICY,
)
def pagerduty_incidents(
    context: dg.AssetExecutionContext,
    config: PagerDutySyncConfig,
    pagerduty: PagerDutyResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """PagerDuty incidents: new ones from `GET /incidents` in time windows (split when a
    window holds more than the 10,000-record offset cap), then `GET /incidents/{id}` for
    older incidents whose timelines changed since they were loaded."""
    result = _sync_windowed(context, config, pagerduty, duckdb, "incidents", "pagerduty__incidents")
    client = pagerduty.get_client()
    with warehouse_connection(duckdb) as conn, failing_clearly():
        has_timelines = conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'pagerduty__log_entries'"
        ).fetchone()[0]
        stale = [row[0] for row in conn.execute(_STALE_INCIDENTS_SQL).fetchall()] if has_timelines else []
        if stale:
            context.log.info(f"incidents: re-fetching {len(stale)} incidents whose timelines changed")
        for start in range(0, len(stale), 500):
            batch = [
                pagerduty.get_json(client, f"incidents/{incident_id}", log=context.log.warning)["incident"]
                for incident_id in stale[start : start + 500]
            ]
            write_batch(conn, "pagerduty__incidents", batch)
    return dg.MaterializeResult(metadata={**result.metadata, "refetched_changed_incidents": len(stale)})


# Incidents named by a log entry that is newer than the incident object we hold (or that
# we do not hold at all): resolved, merged or reopened after they were loaded.
_STALE_INCIDENTS_SQL = """
with latest_entries as (
    select payload -> 'incident' ->> 'id' as incident_id, max((payload ->> 'created_at')::timestamptz) as latest
    from raw.pagerduty__log_entries
    group by 1
)
select latest_entries.incident_id
from latest_entries
left join raw.pagerduty__incidents as incidents on incidents.id = latest_entries.incident_id
where incidents.id is null or latest_entries.latest > (incidents.payload ->> 'updated_at')::timestamptz
order by 1
"""


def _sync_windowed(context, config: PagerDutySyncConfig, pagerduty: PagerDutyResource, duckdb: DuckDBResource,
                   path: str, table: str) -> dg.MaterializeResult:
    history_start = datetime.fromisoformat(config.history_start).replace(tzinfo=UTC)
    client = pagerduty.get_client()
    with warehouse_connection(duckdb) as conn, failing_clearly():
        # Windows end at the API's "now", not the worker's: a skewed clock cannot skip records.
        until = pagerduty.server_time(client, context.log.warning) + timedelta(seconds=1)
        if config.full_refresh:
            reset_high_water_mark(conn, table)
        mark = read_high_water_mark(conn, table)
        since = history_start if mark is None else max(history_start, mark - timedelta(minutes=config.lookback_minutes))
        mode = "full" if mark is None else "incremental"
        context.log.info(f"{path}: {mode} sync from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC")
        batch: list[dict] = []
        newest, loaded = mark, 0
        for page in pagerduty.iter_window(client, path, since, until, context.log.warning):
            batch.extend(page.records)
            for record in page.records:
                created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
                newest = created if newest is None or created > newest else newest
            # The mark moves only when a window is complete: earlier windows are all loaded.
            if len(batch) >= BATCH_ROWS or page.window_done is not None:
                loaded += write_batch(conn, table, batch, stream=table,
                                      high_water_mark=newest if page.window_done else None)
                batch.clear()
                if page.window_done is not None:
                    context.log.info(f"{path}: {loaded} loaded up to {page.window_done:%Y-%m-%d %H:%M}")
    context.log.info(f"{path}: loaded {loaded} records ({mode}), high-water mark {newest}")
    return dg.MaterializeResult(
        metadata={"rows": loaded, "mode": mode, "since": since.isoformat(), "until": until.isoformat(),
                  "high_water_mark": str(newest)}
    )
