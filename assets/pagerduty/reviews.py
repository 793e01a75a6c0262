"""PagerDuty's own post-incident reviews (the Incident Reviews API), for the incidents that need them.

A review is addressed through its incident (`GET /incidents/{id}/review`, 404 when the incident
has none) and its action items likewise (`GET /incidents/{id}/review/action_items`), so every
review costs a request per incident. Only the incidents whose review can still change are asked
about, so a night's requests stay bounded: high urgency (the incidents the review KPIs count),
resolved (not merged) within ``window_days`` before the API's time of the last incident sync,
and without a completed review whose action items are all complete. The incidents resolved
before the window are asked about once, by a paced backfill: each run also asks about the
``older_incidents_per_run`` newest of those not asked about yet, going back to the oldest
incident held, so a new deployment's history gets its reviews over a few nights without a
night's requests nearing PagerDuty's rate limit. How far back every such incident has been
asked about is the stream's mark in ``raw._sync_state``, moved after each batch written, so a
run that dies resumes from its last batch. A review 404 means none
(a review deleted since is deleted here too); action items are asked for only when the review
has some. Every answer must be the review or items of the incident asked about. Records that
cannot load are quarantined (streams ``pagerduty__incident_reviews`` and
``pagerduty__review_action_items``) and their incidents asked about again on every later run. An
account without Incident Reviews (402) or a token that may not read them (403) leaves the tables
as they are, with a warning: the reviews then come from Jira alone.
"""

import re
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from assets.api_quarantine import (
    ApiRequest,
    PoisonShare,
    Quarantined,
    quarantine,
    quarantine_check,
    quarantined,
    release,
    split_poison,
    split_untypable,
)
from assets.api_retry import API_ASSET_RETRY_POLICY, failing_clearly
from assets.pagerduty.resource import PagerDutyResource, ReviewsUnavailable, instant
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import (
    ensure_raw_table,
    read_high_water_mark,
    upsert_json_records,
    warehouse_connection,
    write_batch,
)

REVIEWS, ACTION_ITEMS = "pagerduty__incident_reviews", "pagerduty__review_action_items"
# The sync state of the window's end: the API's time of the last run whose window was asked about.
WINDOW_STREAM = "pagerduty__incident_reviews_window"
# Incidents asked about are written (and released from quarantine) in batches this big.
BATCH_INCIDENTS = 200
_INCIDENT_OF_REQUEST = re.compile(r"^/incidents/([^/]+)/review")


# Incidents resolved before the window asked about per run (at most two requests each: the review
# and its action items): 200 requests at most, a fifth of PagerDuty's 960 a minute per API key
# (docs: REST API Rate Limits), so the first night (whose incident sync already spends a few
# hundred) stays well under it. A year of 12 teams (about 350 such incidents) takes 4 nights.
OLDER_INCIDENTS_PER_RUN = 100
# Incidents whose review may still hold news: high urgency (the incidents the review KPIs
# count), resolved (not by a merge), and no completed review with every action item complete.
_REVIEWABLE = f"""
    incidents.urgency = 'high' and incidents.status = 'resolved'
    and coalesce(incidents.resolve_reason_type, '') <> 'merge_resolve_reason'
    and not exists (
        select 1 from raw.{REVIEWS} as reviews
        where reviews.incident_id = incidents.id and reviews.status = 'completed'
            and not exists (select 1 from raw.{ACTION_ITEMS} as items
                            where items.incident_id = incidents.id and items.status <> 'completed'))
"""


class IncidentReviewSyncConfig(dg.Config):
    """``window_days``: ask about the reviews of incidents resolved at most this many days before
    the API's time of the last incident sync (older reviews, once stored, stay as they were).
    ``older_incidents_per_run``: besides, ask about this many of the incidents resolved before
    the window that were never asked about, newest first (0: none)."""

    window_days: int = 45
    older_incidents_per_run: int = Field(default=OLDER_INCIDENTS_PER_RUN, ge=0)


def stored_moment(conn: duckdb.DuckDBPyConnection, stream: str) -> datetime | None:
    """``stream``'s mark in ``raw._sync_state`` as the raw tables hold times: UTC without a zone
    (the mark is a moment); None: none recorded."""
    mark = read_high_water_mark(conn, stream)
    return mark.astimezone(UTC).replace(tzinfo=None) if mark else None


def record_moment(conn: duckdb.DuckDBPyConnection, stream: str, moment: datetime) -> None:
    """Record ``moment`` (UTC without a zone) as ``stream``'s mark in ``raw._sync_state``, with no
    records written."""
    write_batch(conn, REVIEWS, [], stream=stream, high_water_mark=moment.replace(tzinfo=UTC))


def window_start(conn: duckdb.DuckDBPyConnection, window_days: int) -> datetime | None:
    """``window_days`` before the API's time (the incident sync's mark, else the newest
    incident), UTC without a zone as the raw tables' times; None: no incident held."""
    now = stored_moment(conn, "pagerduty__incidents") or conn.execute(
        "select max(created_at) from raw.pagerduty__incidents").fetchone()[0]
    return None if now is None else now - timedelta(days=window_days)


def incidents_needing_review(conn: duckdb.DuckDBPyConnection, since: datetime) -> list[str]:
    """High-urgency incidents resolved (not by a merge) from ``since`` on (UTC without a zone),
    whose review is not completed with every action item complete, oldest resolve first."""
    return [incident_id for (incident_id,) in conn.execute(f"""
        select incidents.id
        from raw.pagerduty__incidents as incidents
        where incidents.resolved_at >= ? and {_REVIEWABLE}
        order by incidents.resolved_at, incidents.id
    """, [since]).fetchall()]


def reviews_asked_until(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The API's time of the last run whose window was asked about (UTC without a zone): every
    incident resolved between the reviews' mark and it has been asked about; None: no run has
    recorded it yet."""
    return stored_moment(conn, WINDOW_STREAM)


def reviews_asked_back_to(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The resolve time from which on every incident's review has been asked about (UTC without
    a zone, as the raw tables); None: no run has recorded it yet."""
    return stored_moment(conn, REVIEWS)


def older_incidents(conn: duckdb.DuckDBPyConnection, before: datetime, count: int) -> list[tuple[str, datetime]]:
    """The ``count`` newest incidents needing a review (as ``incidents_needing_review``) resolved
    before ``before``, with their resolve times, newest first; and any more resolved at the same
    moment as the last, so a mark at a resolve time never leaves one of them out."""
    if count <= 0:
        return []
    return conn.execute(f"""
        with older as (
            select incidents.id, incidents.resolved_at
            from raw.pagerduty__incidents as incidents
            where incidents.resolved_at < ? and {_REVIEWABLE}
        ), last_one as (
            select resolved_at from older order by resolved_at desc, id desc limit 1 offset ?
        )
        select id, resolved_at from older
        where resolved_at >= coalesce((select resolved_at from last_one), '-infinity'::timestamp)
        order by resolved_at desc, id desc
    """, [before, count - 1]).fetchall()


def older_incidents_left(conn: duckdb.DuckDBPyConnection, before: datetime) -> int:
    """How many incidents needing a review, resolved before ``before``, were never asked about."""
    return conn.execute(f"""
        select count(*) from raw.pagerduty__incidents as incidents
        where incidents.resolved_at < ? and {_REVIEWABLE}
    """, [before]).fetchone()[0]


def _review_problem(review: dict) -> str | None:
    if not isinstance(review.get("id"), str) or not review["id"]:
        return "unparseable: no id"
    if not isinstance(review.get("status"), str):
        return f"unparseable: status {review.get('status')!r} is not a review status"
    return _dates_problem(review, "created_at", "updated_at", "completed_at")


def _action_item_problem(item: dict) -> str | None:
    if not isinstance(item.get("id"), str) or not item["id"]:
        return "unparseable: no id"
    return _dates_problem(item, "created_at", "updated_at", "completed_at")


def _dates_problem(record: dict, *names: str) -> str | None:
    for name in names:
        value = record.get(name)
        if value is not None and instant(value) is None:
            return f"unparseable: {name} {value!r} is not an ISO 8601 date-time with seconds and an offset"
    return None


class _ReviewSync:
    """One run: the incidents asked about, what they answered, what could not load."""

    def __init__(self, context: dg.AssetExecutionContext, pagerduty: PagerDutyResource):
        self.context, self.pagerduty = context, pagerduty
        self.share = {stream: PoisonShare(stream, pagerduty.max_quarantined_share) for stream in (REVIEWS, ACTION_ITEMS)}
        self.requests = self.reviews = self.items = 0

    def run(self, conn: duckdb.DuckDBPyConnection, client, incident_ids: list[str],
            marks: list[datetime | None] | None = None) -> None:
        """Ask about ``incident_ids`` and write what they answered, batch by batch. ``marks``
        (one per incident): once the incidents up to one are written, how far back the reviews
        have been asked about (None: not yet known there), recorded after each batch."""
        for start in range(0, len(incident_ids), BATCH_INCIDENTS):
            batch = incident_ids[start : start + BATCH_INCIDENTS]
            answers = {incident_id: self._ask(client, incident_id) for incident_id in batch}
            self._write(conn, answers)
            if marks and marks[start + len(batch) - 1] is not None:
                record_moment(conn, REVIEWS, marks[start + len(batch) - 1])
            self.context.log.info(f"incident reviews: {start + len(batch)} of {len(incident_ids)} incidents asked")

    def _ask(self, client, incident_id: str) -> tuple[dict | None, list]:
        """The incident's review (None: it has none) and its action items."""
        log = self.context.log.warning
        self.requests += 1
        review = self.pagerduty.incident_review(client, incident_id, log)
        if not (isinstance(review, dict) and review.get("action_item_count")):
            return review, []
        self.requests += 1
        return review, self.pagerduty.review_action_items(client, incident_id, log) or []

    def _write(self, conn: duckdb.DuckDBPyConnection, answers: dict[str, tuple[dict | None, list]]) -> None:
        """Replace what is held for the incidents of ``answers`` with what the API answered now
        (a review or item deleted in PagerDuty goes here too), quarantining what cannot load."""
        records = {REVIEWS: [], ACTION_ITEMS: []}
        poison = {REVIEWS: [], ACTION_ITEMS: []}
        for incident_id, (review, items) in answers.items():
            request = ApiRequest("GET", f"/incidents/{incident_id}/review")
            for table, found, problem, asked in (
                    (REVIEWS, [] if review is None else [review], _review_problem, request),
                    (ACTION_ITEMS, items, _action_item_problem, ApiRequest("GET", f"{request.path}/action_items"))):
                loadable, refused = split_poison(found, problem, asked)
                # An item need not repeat its incident: it is the incident asked about.
                records[table] += [{**record, "incident_id": record.get("incident_id") or incident_id}
                                   for record in loadable]
                poison[table] += refused
                self.share[table].add(len(found), refused)
        for table in (REVIEWS, ACTION_ITEMS):
            records[table], untypable = split_untypable(conn, table, records[table], ApiRequest("GET", "/incidents"))
            # Each named by the request that returned it.
            untypable = [Quarantined(q.record_id, q.reason, ApiRequest(
                "GET", f"/incidents/{q.payload['incident_id']}/review" + ("/action_items" if table == ACTION_ITEMS else "")),
                q.payload) for q in untypable]
            poison[table] += untypable
            self.share[table].add(0, untypable)
        conn.execute("begin transaction")
        try:
            for table in (REVIEWS, ACTION_ITEMS):
                conn.execute(f"delete from raw.{table} where incident_id in (select unnest(?))", [list(answers)])
                upsert_json_records(conn, table, records[table])
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        for table in (REVIEWS, ACTION_ITEMS):
            still = {record.record_id for record in poison[table]}
            release(conn, table, [record.record_id for record in quarantined(conn, table)
                                  if _incident_of(record) in answers and record.record_id not in still])
            quarantine(conn, table, poison[table])
            self.share[table].check()
        self.reviews += len(records[REVIEWS])
        self.items += len(records[ACTION_ITEMS])


def _incident_of(record: Quarantined) -> str | None:
    match = _INCIDENT_OF_REQUEST.match(record.request.path)
    return match.group(1) if match else None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", REVIEWS], deps=[dg.AssetKey(["raw", "pagerduty__incidents"])], group_name="pagerduty",
                     kinds={"pagerduty", "duckdb"},
                     description="PagerDuty's Incident Reviews (GET /incidents/{id}/review) of the high-urgency "
                                 "incidents resolved within the window, and of older ones a slice a night, "
                                 "one row per review id."),
        dg.AssetSpec(["raw", ACTION_ITEMS], deps=[dg.AssetKey(["raw", "pagerduty__incidents"])],
                     group_name="pagerduty", kinds={"pagerduty", "duckdb"},
                     description="The action items of those reviews (GET /incidents/{id}/review/action_items), "
                                 "one row per item id."),
    ],
    pool=WAREHOUSE_POOL,
    name="pagerduty_incident_reviews",
    retry_policy=API_ASSET_RETRY_POLICY,
)
def pagerduty_incident_reviews(context: dg.AssetExecutionContext, config: IncidentReviewSyncConfig,
                               pagerduty: PagerDutyResource, duckdb: DuckDBResource):
    """PagerDuty's post-incident reviews and their action items, asked for the incidents whose
    review can still change: high urgency, resolved within `window_days` (run config, default 45)
    before the API's time of the last incident sync, review not completed or an action item open;
    then for `older_incidents_per_run` (default 100) of the incidents resolved before that, never
    asked about, newest first, back to the oldest held. 404 means no review. Quarantined records'
    incidents are asked about again."""
    client = pagerduty.get_client()
    sync = _ReviewSync(context, pagerduty)
    available = True
    older: list[tuple[str, datetime]] = []
    back_to, left = None, 0
    with warehouse_connection(duckdb) as conn, failing_clearly():
        for table in (REVIEWS, ACTION_ITEMS):
            ensure_raw_table(conn, table)
        since = window_start(conn, config.window_days) if _has_incidents(conn) else None
        asked_until = reviews_asked_until(conn)
        if since is not None and asked_until is not None and asked_until < since:
            # Nights without a run (an outage longer than the window): the incidents resolved
            # since the last run's window were in no window, and above the backfill's mark.
            context.log.warning(f"incident reviews: no review sync since {asked_until:%Y-%m-%d}, longer ago than the "
                                f"{config.window_days}-day window: this run asks about the incidents resolved since "
                                "then too")
            since = asked_until
        candidates = incidents_needing_review(conn, since) if since is not None else []
        retried = {_incident_of(record) for table in (REVIEWS, ACTION_ITEMS) for record in quarantined(conn, table)}
        incident_ids = [*candidates, *sorted(i for i in retried - set(candidates) if i)]
        context.log.info(f"incident reviews: asking about {len(incident_ids)} incidents ({len(candidates)} in the "
                         f"{config.window_days}-day window, the rest quarantined before)")
        try:
            sync.run(conn, client, incident_ids)
            if since is not None:
                record_moment(conn, WINDOW_STREAM, window_start(conn, 0))
                back_to, left, older = _ask_about_older_incidents(conn, client, sync, since,
                                                                  config.older_incidents_per_run)
        except ReviewsUnavailable as refusal:
            available = False
            context.log.warning(f"PagerDuty refuses Incident Reviews to this account or token ({refusal}); the "
                                "post-incident review KPIs count Jira's reviews only")
    metadata = {"incidents_asked": len(incident_ids) + len(older), "requests": sync.requests,
                "reviews": sync.reviews, "action_items": sync.items, "available": available,
                "window_days": config.window_days, "older_incidents_asked": len(older),
                "older_incidents_left": left, "asked_back_to": back_to.isoformat() if back_to else None}
    yield dg.MaterializeResult(asset_key=["raw", REVIEWS], metadata=metadata)
    yield dg.MaterializeResult(asset_key=["raw", ACTION_ITEMS], metadata=metadata)


def _ask_about_older_incidents(conn: duckdb.DuckDBPyConnection, client, sync: _ReviewSync, since: datetime,
                               count: int) -> tuple[datetime, int, list[tuple[str, datetime]]]:
    """After the window (every incident resolved from ``since`` on asked about), ask about the
    ``count`` newest incidents resolved before the reviews' mark that were never asked about,
    moving the mark back batch by batch; returns the mark, the incidents left before it and
    those asked about."""
    recorded = reviews_asked_back_to(conn)
    back_to = since if recorded is None else min(recorded, since)
    if back_to != recorded:
        # The reviews' mark: every incident resolved at or after it has been asked about.
        record_moment(conn, REVIEWS, back_to)
    older = older_incidents(conn, back_to, count)
    resolved = [resolved_at for _, resolved_at in older]
    # Once the incidents up to one are written, every incident resolved at or after its time has
    # been asked about, unless the next one was resolved at that very moment.
    marks = [at if n + 1 == len(resolved) or resolved[n + 1] < at else None for n, at in enumerate(resolved)]
    sync.run(conn, client, [incident_id for incident_id, _ in older], marks)
    back_to = resolved[-1] if resolved else back_to
    left = older_incidents_left(conn, back_to)
    sync.context.log.info(f"reviews: asked about {len(older)} older incidents, back to {back_to:%Y-%m-%d}; "
                          f"{left} left")
    return back_to, left, older


def _has_incidents(conn: duckdb.DuckDBPyConnection) -> bool:
    return conn.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                        "and table_name = 'pagerduty__incidents'").fetchone()[0] > 0


quarantine_checks = [quarantine_check(dg.AssetKey(["raw", table]), table) for table in (REVIEWS, ACTION_ITEMS)]
