"""Jira ingestion: issues with their full changelogs, the ticket classification rules and the
rules of the learning and speaking-up KPIs.

Issues sync incrementally by `updated`: the high-water mark is kept in ``raw._sync_state`` and
committed with each page of rows (the newest `updated` loaded; once the search is through, the
site's time when the sync began), and the next run asks for `updated >= mark -
lookback_minutes`, so edits to old issues are picked up too and a quiet site costs one search
request a night. An issue that cannot be read or completed goes to ``quarantine.api_records``
and is fetched again (`/issue/{id}`) on every later run (see assets/api_quarantine.py). Jira
reports no deletions: each run lists the ids of every issue updated since `history_start` and
removes the stored ones it no longer lists, and fetches by id those it lists that the
warehouse holds nowhere (see _listing_verdict). When
the fields a sync asks for grow (a new release, or the KPI rules naming another field), the
next sync fetches every issue again from ``history_start``, so no stored issue lacks them.
People in an issue are pseudonymised as soon as it is received (assets/identity.py).
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.api_quarantine import (
    ApiRequest,
    PoisonRecord,
    PoisonShare,
    Quarantined,
    quarantine,
    quarantine_check,
    quarantined,
    release,
    split_untypable,
    without_quarantined,
    write_typable,
)
from assets.api_retry import API_ASSET_RETRY_POLICY, api_root, failing_clearly, source_changed_failure
from assets.jira.classification import read_rules, rules_frame
from assets.identity import salt_fingerprint
from assets.jira.resource import API, IssueNotServed, IssuePage, JiraResource, parse_jira_time
from assets.kpi_rules import KpiRulesError, read_kpi_rules
from assets.kpi_rules import rules_frame as kpi_rules_frame
from assets.warehouse.partitions import HISTORY_START, sync_history_start
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import (
    WRITE_BATCH_ROWS,
    read_high_water_mark,
    record_salt_fingerprint,
    record_sync_source,
    replace_table,
    reset_high_water_mark,
    restart_for_new_fields,
    stored_salt_fingerprint,
    stored_sync_source,
    warehouse_connection,
    write_batch,
)

STREAM = "jira__issues"
# More stored issues than this missing from Jira's listing at once is taken for lost access,
# not deletions (see _listing_verdict).
MAX_GONE_SHARE = 0.5
# Passes of the search a sync makes at most when one receives an issue twice (see jira_issues).
MAX_SEARCH_PASSES = 3
# JQL compares times to the minute: a pass read again starts a minute early.
JQL_GRACE = timedelta(minutes=1)


class JiraSyncConfig(dg.Config):
    """``history_start`` (ISO date, UTC; no later than HISTORY_START, see sync_history_start)
    bounds the first, full sync; later runs continue from the stored high-water mark,
    ``lookback_minutes`` earlier. ``full_refresh`` forgets the mark and syncs from
    ``history_start`` again. ``accept_mass_removal`` removes the stored issues Jira no longer
    lists even when more than half of them are missing at once."""

    history_start: str = HISTORY_START
    lookback_minutes: int = 60
    full_refresh: bool = False
    accept_mass_removal: bool = False


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
    changelog, from `/rest/api/3/search/jql` paged by `nextPageToken`; quarantined issues
    are fetched again with `/rest/api/3/issue/{id}`; stored issues that Jira no longer lists
    (deleted, or out of the token's sight) are removed, found by an id-only listing of every
    issue updated since `history_start`. People (reporter, creator, changelog authors, ...) are
    stored as salted pseudonyms only."""
    history_start = sync_history_start(context.asset_key.to_user_string(), config.history_start)
    log = context.log.warning
    client = jira.get_client()
    fields = _or_failure(jira.issue_fields)
    if jira.identity_salt is None:
        log("no identity salt (PSAFE_HR_ID_SALT) for the jira resource: people are dropped from the issues, "
            "so the speaking-up KPIs cannot be computed")
    share = PoisonShare(STREAM, jira.max_quarantined_share)
    loaded: list[str] = []
    with warehouse_connection(duckdb) as conn, failing_clearly():
        site, stored_site = api_root(jira.server_url), stored_sync_source(conn, STREAM)
        if stored_site not in (None, site) and not config.full_refresh:
            raise source_changed_failure("Jira issues", "JIRA_URL", stored_site, site,
                                         "run raw/jira__issues once with config full_refresh: true")
        record_sync_source(conn, STREAM, site)
        # An issue edited while we page moves behind the cursor and can push the one after it
        # past a page boundary; capping the mark at the site's time when the sync began makes
        # the next run look again at everything updated since then.
        started = jira.site_time(client, log)
        fingerprint = salt_fingerprint(jira.identity_salt)
        stored_fingerprint = stored_salt_fingerprint(conn, STREAM)
        if config.full_refresh:
            reset_high_water_mark(conn, STREAM)
        elif stored_fingerprint not in (None, fingerprint):
            raise dg.Failure(allow_retries=False, description=_salt_changed(stored_fingerprint, fingerprint))
        added = restart_for_new_fields(conn, STREAM, fields)
        if added:
            log(f"issues: the sync now asks for {', '.join(added)}, which the stored issues lack: "
                f"fetching every issue again from {history_start:%Y-%m-%d}")
        mark = read_high_water_mark(conn, STREAM)
        since = history_start if mark is None else max(history_start, mark - timedelta(minutes=config.lookback_minutes))
        mode = "full" if mark is None else "incremental"
        context.log.info(f"issues: {mode} sync of those updated since {since:%Y-%m-%d %H:%M} UTC")

        synced_before = mark is not None
        earlier = quarantined(conn, STREAM)
        # A warehouse that held no issue before this run has nothing Jira could have deleted
        # from it: its first sync skips the id listing.
        stored_before = bool(earlier) or (
            conn.execute("select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = ?",
                         [STREAM]).fetchone()[0] > 0
            and conn.execute(f"select count(*) from raw.{STREAM}").fetchone()[0] > 0)

        def stored_histories(issue_id: str) -> list[dict]:
            if not synced_before:
                return []
            row = conn.execute("select payload -> 'changelog' -> 'histories' from raw.jira__issues where id = ?",
                               [issue_id]).fetchone()
            return json.loads(row[0]) if row and row[0] else []

        def set_aside(poison: list[Quarantined]) -> None:
            nonlocal set_aside_count
            share.add(0, poison)
            quarantine(conn, STREAM, poison)
            set_aside_count += len(poison)
            share.check()

        set_aside_count = 0
        old_mark, floor, passes = mark, since, 0
        # The search pages `updated >= floor` in `updated` order by position: an issue on a page
        # already read that is edited meanwhile moves to the end, where this pass receives it
        # again, and every issue after it moves back a place, so the first of a later page may
        # never be received. Only such a move makes a pass skip an issue, and only an issue after
        # the moved one's old place: a pass that received issues twice is read again from the
        # earliest such place (a few passes at most), and the mark never passes it.
        while True:
            passes += 1
            first_seen: dict[str, datetime | None] = {}  # id -> `updated` as this pass first received it
            repeated: dict[str, datetime | None] = {}
            newest = None
            pending: list[tuple[list[dict], ApiRequest]] = []
            for page in jira.iter_issues(client, floor, log, stored_histories, fields):
                share.add(page.received - len(page.poison), [])
                set_aside(page.poison)
                pending = without_quarantined(pending, page.poison)
                for issue_id, updated in _received(page):
                    if issue_id in first_seen:
                        repeated.setdefault(issue_id, first_seen[issue_id])
                    else:
                        first_seen[issue_id] = updated
                    if updated is not None and (newest is None or updated > newest):
                        newest = updated
                pending.append((page.issues, page.request))
                if not page.last and sum(len(issues) for issues, _ in pending) < WRITE_BATCH_ROWS:
                    continue
                # The last page's rows commit with the mark; a batch's before it, then the mark once
                # checked (below), so a run stopped by the check keeps the rows it read.
                page_mark = started if page.last else None
                if page.last and repeated:
                    page_mark = _safe_mark(started, repeated, floor, old_mark)
                written = write_typable(conn, "jira__issues", pending, set_aside, stream=STREAM,
                                        high_water_mark=page_mark)
                pending = []
                release(conn, STREAM, [issue["id"] for issue in written])
                loaded.extend(issue["id"] for issue in written)
                if not page.last:
                    context.log.info(f"issues: {len(dict.fromkeys(loaded))} loaded so far")
                if not page.last and newest is not None:
                    # The end of the pass shows a move, but a run stopped before it resumes from this
                    # batch's mark: ask which issues were edited since the sync began (one id-only
                    # request a batch); one this pass received before that was moved by the edit.
                    repeated.update({issue_id: first_seen[issue_id] for issue_id in jira.issue_ids(client, started, log)
                                     if issue_id not in repeated and first_seen.get(issue_id) is not None
                                     and first_seen[issue_id] < started})
                    page_mark = _safe_mark(min(newest, started), repeated, floor, old_mark)
                    write_batch(conn, "jira__issues", [], stream=STREAM, high_water_mark=page_mark)
                mark = page_mark or mark
            if not repeated:
                break
            if passes == MAX_SEARCH_PASSES:
                log(f"issues: {len(repeated)} issues were received twice in each of {passes} passes of the search "
                    f"(edited while it paged, e.g. {sorted(repeated)[:5]}), so issues after them may have been "
                    f"skipped: the high-water mark goes no further than where the first of them stood ({mark}), and the "
                    "next run reads them again")
                break
            floor = max(floor, _skipped_from(repeated, floor) - JQL_GRACE)
            context.log.info(f"issues: {len(repeated)} issues were received twice (edited while the search paged), "
                             f"so the next ones may have been skipped: searching again from {floor:%Y-%m-%d %H:%M:%S}")
        loaded = list(dict.fromkeys(loaded))

        verdict = ListingVerdict([], [], [])
        if stored_before:
            verdict = _listing_verdict(conn, jira.issue_ids(client, history_start, log), set(loaded),
                                       {r.record_id for r in quarantined(conn, STREAM)}, history_start,
                                       config.accept_mass_removal, log)
        held = set(loaded)
        retried, still = [], []
        # The listing pages by position: an issue deleted while it pages makes it skip a live one.
        # So an issue it lacks is removed only when Jira no longer serves it by id either; one
        # still served is live (loaded now, or quarantined if it cannot load).
        gone_stored, gone_quarantined = [], []
        for record in earlier:
            if record.record_id in held:
                continue
            try:
                if record.record_id.startswith("sha256:"):  # no id to ask for: only its payload to check again
                    retried.append(jira.completed(client, jira.received(record.payload), record.request, log,
                                                  stored_histories))
                else:
                    retried.append(jira.fetch_issue(client, record.record_id, log, stored_histories, fields))
            except IssueNotServed as poison:
                if record.record_id in verdict.gone_quarantined:
                    gone_quarantined.append(record.record_id)
                else:
                    still.append(Quarantined(record.record_id, poison.reason, poison.request, record.payload))
            except PoisonRecord as poison:
                still.append(Quarantined(record.record_id, poison.reason, poison.request, record.payload))
        for issue_id in verdict.gone_stored:
            try:
                retried.append(jira.fetch_issue(client, issue_id, log, stored_histories, fields))
            except IssueNotServed:
                gone_stored.append(issue_id)
            except PoisonRecord as poison:
                still.append(Quarantined(issue_id, poison.reason, poison.request, None))
        for issue_id in verdict.unheld:
            try:
                retried.append(jira.fetch_issue(client, issue_id, log, stored_histories, fields))
            except PoisonRecord as poison:
                still.append(Quarantined(issue_id, poison.reason, poison.request, None))
        unlisted_live = (len(verdict.gone_stored) + len(verdict.gone_quarantined)
                         - len(gone_stored) - len(gone_quarantined))
        if unlisted_live:
            log(f"issues: {unlisted_live} issues Jira's id listing lacked are still served by id (archived in Jira, "
                "which leaves archived issues out of every search, or the listing moved while it paged: an issue "
                "deleted meanwhile): kept")
        if gone_stored or gone_quarantined:
            gone = gone_stored + gone_quarantined
            log(f"issues: removing {len(gone)} issues that Jira no longer lists nor serves by id (deleted, or out of "
                f"the token's sight; they come back when it lists them again): ids {gone[:20]}"
                f"{' ...' if len(gone) > 20 else ''}")
        for issue in list(retried):
            _, untypable = split_untypable(conn, "jira__issues", [issue], ApiRequest("GET", f"{API}/issue/{issue['id']}"))
            if untypable:
                retried.remove(issue)
                still += untypable
        write_batch(conn, "jira__issues", retried)
        release(conn, STREAM, [issue["id"] for issue in retried])
        quarantine(conn, STREAM, still)
        release(conn, STREAM, gone_quarantined)
        conn.execute("delete from raw.jira__issues where id in (select unnest(?))", [gone_stored])
        record_salt_fingerprint(conn, STREAM, fingerprint)
    removed = gone_stored + gone_quarantined
    context.log.info(f"issues: loaded {len(loaded)} ({mode}), {len(retried)} of the quarantined or unheld loaded "
                     f"now, {set_aside_count + len(still)} quarantined, {len(removed)} removed (no longer in Jira); "
                     f"high-water mark {mark}")
    return dg.MaterializeResult(metadata={
        "rows": len(loaded) + len(retried), "quarantined": set_aside_count + len(still), "mode": mode,
        "since": since.isoformat(), "high_water_mark": str(mark), "fields": dg.MetadataValue.json(fields),
        "removed": len(removed), "removed_ids": dg.MetadataValue.json(removed[:100]),
        "fetched_unheld": len(verdict.unheld), "search_passes": passes,
    })


def _received(page: IssuePage) -> list[tuple[str, datetime | None]]:
    """The ids a search page holds, each with its `updated` (None: unreadable, a poison record's)."""
    received = [(issue["id"], parse_jira_time(issue["fields"]["updated"])) for issue in page.issues]
    return received + [(record.record_id, None) for record in page.poison]


def _safe_mark(reached: datetime, repeated: dict[str, datetime | None], floor: datetime,
               old_mark: datetime | None) -> datetime:
    """The mark once a pass from ``floor`` has ``reached`` a time: pages come in `updated` order,
    so everything before it is loaded (or quarantined, and asked for by id on later runs); but
    never past where an issue the pass received twice first stood (an issue after it may have
    been skipped), nor then back before the mark the run started from (the next run reads from
    ``old_mark`` less the lookback, at or before ``floor``)."""
    if not repeated:
        return reached
    mark = min(reached, _skipped_from(repeated, floor))
    return max(mark, old_mark) if old_mark else mark


def _skipped_from(repeated: dict[str, datetime | None], floor: datetime) -> datetime:
    """The earliest `updated` from which a pass that received ``repeated`` twice (each with the
    `updated` it first had) may have skipped an issue: where the first of them stood (``floor``, the
    pass's bound, when one's is unknown)."""
    return min((floor if updated is None else updated for updated in repeated.values()), default=floor)


def _salt_changed(stored: str, now: str) -> str:
    """Why the sync stops when PSAFE_HR_ID_SALT is not what the stored issues were received with."""
    fix = ("run raw/jira__issues once with config full_refresh: true to receive every issue again with the salt now "
           "set")
    if stored == salt_fingerprint(None):
        return (f"PSAFE_HR_ID_SALT is set now, but the stored Jira issues were received without it, so their people "
                f"were dropped and the speaking-up KPIs cannot be computed: {fix}.")
    if now == salt_fingerprint(None):
        return ("PSAFE_HR_ID_SALT is not set, but the stored Jira issues' people were pseudonymised with a salt: set "
                f"it again (the same value), or {fix} (its people are then dropped).")
    return ("PSAFE_HR_ID_SALT is not the salt the stored Jira issues' people were pseudonymised with, so they would "
            "no longer match the HR exports and the identity map (the speaking-up KPIs would fall to 0). Restore the "
            f"previous salt, or {fix}.")


@dataclass(frozen=True)
class ListingVerdict:
    """What Jira's id listing says about the warehouse: stored issues and quarantined ids it no
    longer lists (to remove once Jira refuses them by id too), and issues it lists that the
    warehouse holds nowhere (to fetch by id: removed while out of the token's sight and visible
    again, or updated after the search)."""

    gone_stored: list[str]
    gone_quarantined: list[str]
    unheld: list[str]


def _listing_verdict(conn, listed: set[str], received: set[str], quarantined_ids: set[str],
                     history_start: datetime, accept_mass_removal: bool, log) -> ListingVerdict:
    """Jira Cloud reports no deletions, so without its listing a deleted issue would count in the
    marts for ever. Stored issues (updated since ``history_start``, the listing's scope) and
    quarantined ones that the listing lacks are candidates for removal (the sync removes those
    Jira no longer serves by id: a listing paged while an issue was deleted skips a live one),
    under two guards that hold for both:
    a listing that lacks an issue this run's search just ``received`` is not Jira's current one
    (a cache's stale answer), and more than MAX_GONE_SHARE missing at once is taken for lost
    access, not deletions, unless ``accept_mass_removal``. Nothing is removed on either; the
    run warns."""
    stored = conn.execute("select id, updated_at >= ? from raw.jira__issues",
                          [history_start.replace(tzinfo=None)]).fetchall()
    held = {issue_id for issue_id, in_scope in stored if in_scope}
    anywhere = {issue_id for issue_id, _ in stored} | quarantined_ids
    if unlisted := received - listed:
        log(f"issues: Jira's id listing lacks {len(unlisted)} issues this run received (e.g. {sorted(unlisted)[:5]}): "
            "not a current listing, so nothing was removed or fetched on its word; the next run lists them again")
        return ListingVerdict([], [], [])
    unheld = sorted(listed - anywhere)
    asked_again = {record_id for record_id in quarantined_ids if not record_id.startswith("sha256:")}
    gone_stored, gone_quarantined = sorted(held - listed), sorted(asked_again - listed)
    gone, known = len(gone_stored) + len(gone_quarantined), len(held) + len(asked_again)
    if gone > MAX_GONE_SHARE * known and not accept_mass_removal:
        log(f"issues: {gone} of the {known} stored or quarantined issues are no longer listed by Jira (more than "
            f"{MAX_GONE_SHARE:.0%}): none removed. Has JIRA_API_TOKEN's account lost access to projects? If the "
            "issues were deleted on purpose, run the sync once with config accept_mass_removal: true")
        return ListingVerdict([], [], unheld)
    return ListingVerdict(gone_stored, gone_quarantined, unheld)


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "config__ticket_classification"], group_name="jira", kinds={"yaml", "duckdb"})
def ticket_classification_rules(context: dg.AssetExecutionContext, jira: JiraResource,
                                duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The proactive/reactive ticket classification rules, one row per rule in file order,
    from the YAML file named by the `jira` resource's `classification_rules_path`, else
    PSAFE_TICKET_CLASSIFICATION_RULES, else config/ticket_classification.yml."""
    path = jira.classification_rules_file()
    rows = read_rules(path)
    with warehouse_connection(duckdb) as conn:
        replace_table(conn, "raw", "config__ticket_classification", rules_frame(rows))
    context.log.info(f"{len(rows)} classification rules from {path}")
    return dg.MaterializeResult(metadata={"rules": len(rows), "path": str(path)})


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "config__kpi_rules"], group_name="jira", kinds={"yaml", "duckdb"})
def kpi_rules(context: dg.AssetExecutionContext, jira: JiraResource, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The rules of the learning and speaking-up KPIs (which Jira issues are post-incident
    reviews, how a review names its incidents, its action items and their close window, the
    repeat-incident window, the junior HR roles) as one row, from the YAML file named by the
    `jira` resource's `kpi_rules_path`, else PSAFE_KPI_RULES, else config/kpi_rules.yml."""
    path = _or_failure(jira.kpi_rules_file)
    rules = _or_failure(lambda: read_kpi_rules(path))
    with warehouse_connection(duckdb) as conn:
        replace_table(conn, "raw", "config__kpi_rules", kpi_rules_frame(rules))
    context.log.info(f"KPI rules from {path}: {rules}")
    return dg.MaterializeResult(metadata={"path": str(path), "rules": dg.MetadataValue.json(
        {name: list(value) if isinstance(value, tuple) else value for name, value in rules.__dict__.items()})})


def _or_failure(read):
    """``read()``, a malformed KPI rules file failing the step with its message alone."""
    try:
        return read()
    except KpiRulesError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None


quarantine_checks = [quarantine_check(jira_issues, STREAM)]
