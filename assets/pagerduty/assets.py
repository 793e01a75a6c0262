"""PagerDuty ingestion: teams, services, incidents and their log-entry timelines."""


from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.pagerduty.resource import PagerDutyResource
from assets.warehouse.raw_tables import upsert_json_records


class PagerDutySyncConfig(dg.Config):
    """Which stretch of history to sync (``history_start`` as an ISO date, UTC)."""

    history_start: str = "2024-01-01"


def _sync_bounds(config: PagerDutySyncConfig) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(config.history_start).replace(tzinfo=UTC)
    return start, datetime.now(UTC).replace(microsecond=0)


@dg.asset(key=["raw", "pagerduty__teams"], group_name="pagerduty", compute_kind="pagerduty")
def pagerduty_teams(
    context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every PagerDuty team, as returned by `GET /teams`."""
    teams = list(pagerduty.get_client().iter_all("teams"))
    with duckdb.get_connection() as conn:
        upsert_json_records(conn, "pagerduty__teams", teams)
    context.log.info(f"loaded {len(teams)} teams")
    return dg.MaterializeResult(metadata={"rows": len(teams)})


@dg.asset(key=["raw", "pagerduty__services"], group_name="pagerduty", compute_kind="pagerduty")
def pagerduty_services(
    context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every PagerDuty service with its owning teams, as returned by `GET /services`."""
    services = list(pagerduty.get_client().iter_all("services"))
    with duckdb.get_connection() as conn:
        upsert_json_records(conn, "pagerduty__services", services)
    context.log.info(f"loaded {len(services)} services")
    return dg.MaterializeResult(metadata={"rows": len(services)})


@dg.asset(key=["raw", "pagerduty__incidents"], group_name="pagerduty", compute_kind="pagerduty")
def pagerduty_incidents(
    context: dg.AssetExecutionContext,
    config: PagerDutySyncConfig,
    pagerduty: PagerDutyResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """PagerDuty incidents created since `history_start`, from `GET /incidents` in
    month-sized windows (split further when a window exceeds the 10,000-record cap)."""
    return _sync_windowed(context, config, pagerduty, duckdb, "incidents", "pagerduty__incidents")


@dg.asset(key=["raw", "pagerduty__log_entries"], group_name="pagerduty", compute_kind="pagerduty")
def pagerduty_log_entries(
    context: dg.AssetExecutionContext,
    config: PagerDutySyncConfig,
    pagerduty: PagerDutyResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Incident timelines (trigger, acknowledge, resolve, ... entries) since `history_start`,
    from `GET /log_entries`; durations are rebuilt from these, never from the incident object."""
    return _sync_windowed(context, config, pagerduty, duckdb, "log_entries", "pagerduty__log_entries")


def _sync_windowed(context, config, pagerduty, duckdb, path, table) -> dg.MaterializeResult:
    since, until = _sync_bounds(config)
    client = pagerduty.get_client()
    batch: list[dict] = []
    loaded = 0
    with duckdb.get_connection() as conn:
        for record in pagerduty.iter_window(client, path, since, until, context.log):
            batch.append(record)
            if len(batch) >= 5_000:
                loaded += upsert_json_records(conn, table, batch)
                batch.clear()
                context.log.info(f"{path}: {loaded} loaded so far")
        loaded += upsert_json_records(conn, table, batch)
    context.log.info(f"{path}: loaded {loaded} records from {since:%Y-%m-%d} to {until:%Y-%m-%d}")
    return dg.MaterializeResult(
        metadata={"rows": loaded, "since": since.isoformat(), "until": until.isoformat()}
    )
