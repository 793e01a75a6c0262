"""PagerDuty ingestion: teams, services, incidents and their log-entry timelines.

Incidents and log entries sync incrementally in time windows that end at the API's clock.
Each stream keeps a high-water mark in ``raw._sync_state``: the API's time up to which every
record created is loaded, committed with the rows of every completed window. The next run
starts ``lookback_minutes`` before it, so late-arriving records are not missed and overlaps are
absorbed by the upserts, and a quiet account costs one request per stream a night. New log
entries of incidents created long ago (resolved, merged or reopened later) come with the
log-entry sync; their incidents are then fetched again so the raw incident objects stay
current.

A record that cannot be loaded (no id, a date that is not one, an incident the API no longer
serves) goes to ``quarantine.api_records`` and is tried again on every later run (see
assets/api_quarantine.py); the rest of its page and stream load.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.api_quarantine import (
    ApiRequest,
    PoisonShare,
    Quarantined,
    quarantine,
    quarantine_check,
    quarantined,
    release,
    replace_quarantine,
    split_poison,
    split_untypable,
    without_quarantined,
    write_typable,
)
from assets.api_retry import API_ASSET_RETRY_POLICY, ApiError, api_root, failing_clearly, source_changed_failure
from assets.pagerduty.resource import PAGE_SIZE, PagerDutyResource, TeamsUnavailable, instant
from assets.warehouse.partitions import HISTORY_START, sync_history_start
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import (
    WRITE_BATCH_ROWS,
    read_high_water_mark,
    record_sync_source,
    reset_high_water_mark,
    stored_sync_source,
    upsert_json_records,
    warehouse_connection,
)

# Incidents fetched one by one are written (and released from quarantine) in batches this big.
REFETCH_BATCH = 500
# Statuses with which the API refuses one record for good (a bad id, no access, gone): that
# record is quarantined; any other failure stops the sync.
RECORD_REFUSALS = (400, 403, 404, 410)


class PagerDutySyncConfig(dg.Config):
    """``history_start`` (ISO date, UTC; no later than HISTORY_START, see sync_history_start)
    bounds the first, full sync; later runs continue from the stored high-water mark,
    ``lookback_minutes`` earlier. ``full_refresh`` forgets the mark and syncs from
    ``history_start`` again."""

    history_start: str = HISTORY_START
    lookback_minutes: int = 60
    full_refresh: bool = False


# -- what makes a record loadable (staging reads these fields with strict casts) ------------


def _identified(record: dict) -> str | None:
    return None if isinstance(record.get("id"), str) and record["id"] else "unparseable: no id"


def _dated(record: dict, field: str, *, required: bool = True) -> str | None:
    value = record.get(field)
    if value is None and not required:
        return None
    if instant(value) is None:
        return f"unparseable: {field} {value!r} is not an ISO 8601 date-time with seconds and an offset"
    return None


def _log_entry_problem(entry: dict) -> str | None:
    incident = entry.get("incident")
    if not isinstance(incident, dict) or not isinstance(incident.get("id"), str) or not incident["id"]:
        return _identified(entry) or "unparseable: no incident.id"
    return _identified(entry) or _dated(entry, "created_at")


def _incident_problem(incident: dict) -> str | None:
    number = incident.get("incident_number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        return f"unparseable: incident_number {number!r} is not an integer"
    return (_identified(incident) or _dated(incident, "created_at")
            or _dated(incident, "updated_at", required=False) or _dated(incident, "resolved_at", required=False))


# -- teams and services: listed whole every run ----------------------------------------------


def _sync_listing(context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource,
                  path: str) -> dg.MaterializeResult:
    table = f"pagerduty__{path}"
    available = True
    with failing_clearly():
        try:
            records = list(pagerduty.iter_all(pagerduty.get_client(), path, context.log.warning))
        except TeamsUnavailable as refusal:
            # The account has no teams to list: an empty listing loses nothing (those stored stay).
            records, available = [], False
            context.log.warning(
                f"PagerDuty refuses the teams listing ({refusal}): the account's plan lacks the `teams` ability, "
                "so it has no teams. Incidents count for the team that claims their service by id "
                "(pagerduty_services in team_map.yml); pagerduty_teams claims match nothing. Teams stored "
                "before are kept.")
    request = ApiRequest("GET", f"/{path}", {"limit": PAGE_SIZE})
    loadable, poison = split_poison(records, _identified, request)
    share = PoisonShare(table, pagerduty.max_quarantined_share)
    with warehouse_connection(duckdb) as conn, failing_clearly():
        if loadable and len(_not_held(conn, table, loadable)) == len(loadable) and _held_count(conn, table):
            # PagerDuty ids are the account's: a listing sharing none with the stored one is
            # another account's (a token for another account, PAGERDUTY_URL unchanged).
            raise dg.Failure(allow_retries=False, description=(
                f"PagerDuty lists none of the {_held_count(conn, table)} {path} this warehouse holds: "
                "PAGERDUTY_API_TOKEN (or PAGERDUTY_URL) reaches another account than the one the warehouse was "
                "synced from, whose incidents and sync marks would mix with its own. Restore the token of that "
                "account, or point PSAFE_WAREHOUSE at a new warehouse file for the other one. Nothing was written."))
        loadable, untypable = split_untypable(conn, table, loadable, request)
        poison += untypable
        share.add(len(records), poison)
        replace_quarantine(conn, table, poison)
        share.check()
        upsert_json_records(conn, table, loadable)
    context.log.info(f"loaded {len(loadable)} {path}" + (f"; {len(poison)} quarantined" if poison else ""))
    return dg.MaterializeResult(metadata={"rows": len(loadable), "quarantined": len(poison), "available": available})


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "pagerduty__teams"], group_name="pagerduty", kinds={"pagerduty", "duckdb"},
          retry_policy=API_ASSET_RETRY_POLICY)
def pagerduty_teams(
    context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every PagerDuty team, as returned by `GET /teams`; none, with a warning, on an account
    whose plan has no Teams (402 Payment Required, "Missing Account Ability")."""
    return _sync_listing(context, pagerduty, duckdb, "teams")


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "pagerduty__services"], group_name="pagerduty", kinds={"pagerduty", "duckdb"},
          retry_policy=API_ASSET_RETRY_POLICY)
def pagerduty_services(
    context: dg.AssetExecutionContext, pagerduty: PagerDutyResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Every PagerDuty service with its *current* owning teams, as returned by
    `GET /services` (incidents are attributed to the team at trigger time, not this one)."""
    return _sync_listing(context, pagerduty, duckdb, "services")


# -- log entries and incidents: incremental, in windows -----------------------------------


# After the services: a listing that shows another account than the warehouse's stops the
# night before its incidents are fetched behind this account's marks.
@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "pagerduty__log_entries"], group_name="pagerduty", kinds={"pagerduty", "duckdb"},
          retry_policy=API_ASSET_RETRY_POLICY, deps=[dg.AssetKey(["raw", "pagerduty__services"])])
def pagerduty_log_entries(
    context: dg.AssetExecutionContext,
    config: PagerDutySyncConfig,
    pagerduty: PagerDutyResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Incident timelines (trigger, acknowledge, resolve, notes, custom-field changes, ...)
    from `GET /log_entries`, incrementally by entry time; durations are rebuilt from these,
    never from the incident object. Entries never change once written, so one already held
    is not written again. Quarantined entries are fetched again with `GET /log_entries/{id}`."""
    sync = _WindowedSync(context, config, pagerduty, "log_entries", _log_entry_problem)
    client = pagerduty.get_client()
    with warehouse_connection(duckdb) as conn, failing_clearly():
        earlier = quarantined(conn, sync.table)
        sync.run(conn, client)
        held = set(sync.loaded_ids)
        retry = {q.record_id: q.payload for q in earlier if q.record_id not in held}
        sync.refetch(conn, client, list(retry), "log_entries/{}", "log_entry", counted=False, payloads=retry)
    return sync.result()


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
    older incidents with log entries loaded since the incident was (resolved, merged or
    reopened later, or noted: a note does not move `updated_at`) and for quarantined ones."""
    sync = _WindowedSync(context, config, pagerduty, "incidents", _incident_problem)
    client = pagerduty.get_client()
    with warehouse_connection(duckdb) as conn, failing_clearly():
        earlier = quarantined(conn, sync.table)
        sync.run(conn, client)
        held = set(sync.loaded_ids)
        retry = {q.record_id: q.payload for q in earlier if q.record_id not in held}
        stale = [incident_id for incident_id in _stale_incidents(conn) if incident_id not in retry]
        if stale:
            context.log.info(f"incidents: fetching {len(stale)} incidents again whose timelines changed")
        sync.refetch(conn, client, stale, "incidents/{}", "incident", counted=True)
        sync.refetch(conn, client, list(retry), "incidents/{}", "incident", counted=False, payloads=retry)
    return sync.result(refetched_changed_incidents=len(stale))


def _stale_incidents(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Incidents named by a log entry loaded after the incident was (or never loaded). Both
    times are the warehouse's own clock, so a skewed API clock cannot hide a change, and a
    refetched incident is newer than every entry that prompted it: it is fetched once, not
    every night (a note added after the incident's `updated_at` included)."""
    held = {name for (name,) in conn.execute(
        "select table_name from information_schema.tables where table_schema = 'raw'").fetchall()}
    if "pagerduty__log_entries" not in held:
        return []
    incidents = "raw.pagerduty__incidents" if "pagerduty__incidents" in held else \
        "(select null::varchar as id, null::timestamptz as loaded_at)"
    return [incident_id for (incident_id,) in conn.execute(f"""
        with entries as (
            select payload -> 'incident' ->> 'id' as incident_id, max(loaded_at) as loaded_at
            from raw.pagerduty__log_entries
            group by 1
        )
        select entries.incident_id
        from entries
        left join {incidents} as incidents on incidents.id = entries.incident_id
        where incidents.id is null or entries.loaded_at > incidents.loaded_at
        order by 1
    """).fetchall()]


class _WindowedSync:
    """One run of a windowed stream: its pages, its refetches by id, its quarantine."""

    def __init__(self, context: dg.AssetExecutionContext, config: PagerDutySyncConfig, pagerduty: PagerDutyResource,
                 path: str, problem: Callable[[dict], str | None]):
        self.context, self.config, self.pagerduty, self.path, self.problem = context, config, pagerduty, path, problem
        self.table = f"pagerduty__{path}"
        self.history_start = sync_history_start(context.asset_key.to_user_string(), config.history_start)
        self.share = PoisonShare(self.table, pagerduty.max_quarantined_share)
        self.loaded_ids: list[str] = []
        self.quarantined = 0
        self.mode = self.since = self.mark = None

    def run(self, conn: duckdb.DuckDBPyConnection, client) -> None:
        account, stored_account = api_root(self.pagerduty.base_url), stored_sync_source(conn, self.table)
        if stored_account not in (None, account) and not self.config.full_refresh:
            raise source_changed_failure(f"PagerDuty {self.path.replace('_', ' ')}", "PAGERDUTY_URL", stored_account,
                                         account, f"run {self.context.asset_key.to_user_string()} once with config "
                                                  "full_refresh: true")
        record_sync_source(conn, self.table, account)
        if self.config.full_refresh:
            reset_high_water_mark(conn, self.table)
        self.mark = read_high_water_mark(conn, self.table)
        lookback = timedelta(minutes=self.config.lookback_minutes)
        self.since = self.history_start if self.mark is None else max(self.history_start, self.mark - lookback)
        self.mode = "full" if self.mark is None else "incremental"
        self.context.log.info(f"{self.path}: {self.mode} sync from {self.since:%Y-%m-%d %H:%M} UTC to the API's now")
        pending: list[tuple[list[dict], ApiRequest]] = []
        for page in self.pagerduty.iter_window(client, self.path, self.since, self.context.log.warning):
            # The raw table's typed fields are checked when the batch is written (write_typable).
            loadable, poison = split_poison(page.records, self.problem, page.request)
            self._set_aside(conn, poison, received=len(page.records))
            pending = [*without_quarantined(pending, poison), (loadable, page.request)]
            # The mark moves only when a window is complete: earlier windows are all loaded.
            if sum(len(records) for records, _ in pending) >= WRITE_BATCH_ROWS or page.window_done is not None:
                self._write(conn, pending, page.window_done)
                pending = []
                if page.window_done is not None:
                    self.mark = page.window_done
                    self.context.log.info(f"{self.path}: {len(self.loaded_ids)} loaded up to "
                                          f"{page.window_done:%Y-%m-%d %H:%M}")

    def refetch(self, conn: duckdb.DuckDBPyConnection, client, ids: list[str], path: str, entity: str, *,
                counted: bool, payloads: dict[str, object] | None = None) -> None:
        """Fetch the records ``ids`` again one by one (``path`` with the id); write those that
        load, quarantine those the API refuses or that still cannot load. ``counted``: they
        count towards the share of poison (records already quarantined do not: one that stays
        poison would otherwise fail every quiet night). ``payloads``: what is known of them."""
        payloads = payloads or {}
        for start in range(0, len(ids), REFETCH_BATCH):
            chunk = ids[start : start + REFETCH_BATCH]
            loadable: list[tuple[list[dict], ApiRequest]] = []
            poison: list[Quarantined] = []
            for record_id in chunk:
                request = ApiRequest("GET", "/" + path.format(record_id))
                try:
                    if record_id.startswith("sha256:"):  # no id to ask for: only its payload to check again
                        fetched = payloads[record_id]
                    else:
                        fetched = self.pagerduty.get_json(client, path.format(record_id), log=self.context.log.warning,
                                                          expect=_the_record(entity, record_id))[entity]
                except ApiError as error:
                    if error.status not in RECORD_REFUSALS:
                        raise
                    poison.append(Quarantined(record_id, f"refused: {error}", request, payloads.get(record_id)))
                    continue
                accepted, refused = split_poison([fetched], self.problem, request)
                # Checked here, not when written, so a record that stays poison is not counted.
                accepted, untypable = split_untypable(conn, self.table, accepted, request)
                loadable.append((accepted, request))
                poison.extend(refused + untypable)
            self._set_aside(conn, poison, received=len(chunk) if counted else None)
            self._write(conn, loadable, None)

    def _set_aside(self, conn: duckdb.DuckDBPyConnection, poison: list[Quarantined], *, received: int | None) -> None:
        """Quarantine ``poison``; when it came with ``received`` records, count it towards the
        share a sync tolerates."""
        quarantine(conn, self.table, poison)
        self.quarantined += len(poison)
        if received is not None:
            self.share.add(received, poison)
            self.share.check()

    def _write(self, conn: duckdb.DuckDBPyConnection, pages: list[tuple[list[dict], ApiRequest]],
               window_done: datetime | None) -> None:
        """Write the records of ``pages`` (each with the request that returned it) with the
        mark ``window_done``; those a typed column cannot hold are quarantined, counted towards
        the share of poison."""
        if self.path == "log_entries":  # entries never change: write only those not held yet
            new = {record["id"] for record in _not_held(conn, self.table, [r for records, _ in pages for r in records])}
            pages = [([record for record in records if record["id"] in new], request) for records, request in pages]
        written = write_typable(conn, self.table, pages, lambda untypable: self._set_aside(conn, untypable, received=0),
                                stream=self.table, high_water_mark=window_done)
        ids = [record["id"] for record in written]
        release(conn, self.table, ids)
        self.loaded_ids.extend(ids)

    def result(self, **metadata) -> dg.MaterializeResult:
        self.context.log.info(f"{self.path}: loaded {len(self.loaded_ids)} records ({self.mode}), "
                              f"{self.quarantined} quarantined, high-water mark {self.mark}")
        return dg.MaterializeResult(metadata={
            "rows": len(self.loaded_ids), "quarantined": self.quarantined, "mode": self.mode,
            "since": self.since.isoformat(), "high_water_mark": str(self.mark), **metadata,
        })


def _the_record(entity: str, record_id: str):
    """The answer to `GET /<entity>s/{id}` must be that record, not another's."""

    def check(body: dict) -> str | None:
        record = body.get(entity)
        if not isinstance(record, dict):
            return f"the answer holds no '{entity}'"
        if record.get("id") != record_id:
            return f"asked for {entity} {record_id}, got {entity} {record.get('id')}"
        return None

    return check


def _raw_table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return conn.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                        "and table_name = ?", [table]).fetchone()[0] > 0


def _held_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return conn.execute(f"select count(*) from raw.{table}").fetchone()[0] if _raw_table_exists(conn, table) else 0


def _not_held(conn: duckdb.DuckDBPyConnection, table: str, records: list[dict]) -> list[dict]:
    if not _raw_table_exists(conn, table) or not records:
        return records
    held = {row[0] for row in conn.execute(f"select id from raw.{table} where id in (select unnest(?))",
                                           [[record["id"] for record in records]]).fetchall()}
    return [record for record in records if record["id"] not in held]


quarantine_checks = [
    quarantine_check(pagerduty_teams, "pagerduty__teams"),
    quarantine_check(pagerduty_services, "pagerduty__services"),
    quarantine_check(pagerduty_log_entries, "pagerduty__log_entries"),
    quarantine_check(pagerduty_incidents, "pagerduty__incidents"),
]
