"""PagerDuty's Incident Reviews of the incidents resolved before the review sync's window reach
the warehouse by a paced backfill: each night asks about a bounded slice of the older incidents
never asked about, newest first, and records how far back it got (raw._sync_state), so after
enough nights every older incident has been asked about exactly once, a run that dies mid-slice
resumes from its last batch, and no night nears PagerDuty's rate limit (960 requests a minute,
which the sandbox enforces with 429s)."""

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.pagerduty import reviews
from assets.pagerduty.assets import pagerduty_incidents, pagerduty_log_entries, pagerduty_services, pagerduty_teams
from assets.pagerduty.resource import PagerDutyResource
from assets.pagerduty.reviews import (
    OLDER_INCIDENTS_PER_RUN,
    IncidentReviewSyncConfig,
    incidents_needing_review,
    older_incidents,
    pagerduty_incident_reviews,
    reviews_asked_back_to,
    window_start,
)
from assets.warehouse.raw_tables import ensure_raw_table, write_batch
from assets.warehouse.resource import WarehouseResource
from pipelines.demo import SANDBOX_PAGERDUTY_TOKEN, start_sandbox
from pipelines.synthetic.model import IncidentReview, ReviewActionItem
from pipelines.synthetic.org import OrgSpec, generate

REPO = Path(__file__).resolve().parents[1]
WINDOW = timedelta(days=IncidentReviewSyncConfig().window_days)
FAST_RETRIES = {"timeout_seconds": 5, "max_attempts": 4, "base_delay_seconds": 0.01, "max_delay_seconds": 5}
# The sandbox's limit, PagerDuty's documented one for an API key (docs: REST API Rate Limits).
RATE_LIMIT_PER_MINUTE = 960
PROGRESS = re.compile(r"reviews: asked about (\d+) older incidents, back to (\d{4}-\d\d-\d\d); (\d+) left")
REVIEWS_SYNC = [pagerduty_teams, pagerduty_services, pagerduty_incidents, pagerduty_incident_reviews]


def reviewable(incident, before: datetime) -> bool:
    return (incident.urgency == "high" and incident.resolved_at is not None and incident.merged_into is None
            and incident.resolved_at < before)


@pytest.fixture(scope="module")
def org():
    """An organisation of 10 teams over 6 months (about 125 reviewable incidents resolved before
    the window: more than one night's default slice) that has used PagerDuty's Incident Reviews
    for longer than the window: reviews, with action items, of six incidents resolved well before
    it, the oldest reviewable incident's among them (the generator writes them for the window's
    incidents only)."""
    org = generate(OrgSpec(seed=7, n_teams=10, n_months=6))
    reviewed = {review.incident_id for review in org.incident_reviews}
    old = sorted((incident for incident in org.incidents
                  if reviewable(incident, org.as_of - 2 * WINDOW) and incident.pagerduty_id not in reviewed),
                 key=lambda incident: incident.resolved_at)
    assert len(old) > 6
    for n, incident in enumerate([old[0], old[1], old[len(old) // 3], old[len(old) // 2], old[-2], old[-1]]):
        done = incident.resolved_at + timedelta(days=3)
        org.incident_reviews.append(IncidentReview(
            id=f"QOLDREVIEW{n}", incident_id=incident.pagerduty_id, title=f"Review of #{incident.number}",
            created_at=incident.resolved_at + timedelta(days=1), completed_at=done,
            action_items=[ReviewActionItem(f"AOLDITEM{n}", "Add an alert", done, done + timedelta(days=2))]))
    return org


OLD_REVIEWS = {f"QOLDREVIEW{n}" for n in range(6)}
OLD_ITEMS = {f"AOLDITEM{n}" for n in range(6)}


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """Every incident whose review the sync asks for, in order (the real request is made)."""
    incidents: list[str] = []
    ask = PagerDutyResource.incident_review

    def recording(self, client, incident_id, log=None):
        incidents.append(incident_id)
        return ask(self, client, incident_id, log)

    monkeypatch.setattr(PagerDutyResource, "incident_review", recording)
    return incidents


def night(sandbox, warehouse: Path, org, review_config: dict | None = None, *,
          assets=REVIEWS_SYNC) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """One night's PagerDuty sync (the incidents, then their reviews) and its log messages."""
    definitions = dg.Definitions(
        assets=assets,
        resources={"pagerduty": PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                                  ca_bundle_path=sandbox.ca_bundle_path, **FAST_RETRIES),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        jobs=[dg.define_asset_job("sync")])
    start = {"config": {"history_start": org.spec.start.isoformat()}}
    ops = {"raw__pagerduty__incidents": start}
    if pagerduty_log_entries in assets:
        ops["raw__pagerduty__log_entries"] = start
    if review_config is not None and pagerduty_incident_reviews in assets:
        ops["pagerduty_incident_reviews"] = {"config": review_config}
    instance = dg.DagsterInstance.ephemeral()
    result = definitions.resolve_job_def("sync").execute_in_process(
        run_config={"ops": ops}, instance=instance, raise_on_error=False)
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, messages


def rate_limited(result: dg.ExecuteInProcessResult, messages: list[str]) -> list[str]:
    """What a night shows of PagerDuty's rate limit: a 429 the client waited out (it logs each
    retry with the status), or a step that failed or was retried (a 429 asking for a longer wait
    than the client takes fails the step, which Dagster's retry policy runs again)."""
    return [message for message in messages if "HTTP 429" in message] + [
        event.event_type_value for event in result.all_events
        if event.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_FAILURE")]


def progress(messages: list[str]) -> tuple[int, str, int]:
    [line] = [match for message in messages if (match := PROGRESS.search(message))]
    return int(line[1]), line[2], int(line[3])


def held(warehouse: Path, table: str) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {row[0] for row in conn.sql(f"select id from raw.{table}").fetchall()}


def before_the_first_review_sync(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse after an incident sync, with the review tables the review sync makes."""
    conn = duckdb.connect(str(warehouse))
    for table in ("pagerduty__incident_reviews", "pagerduty__review_action_items"):
        ensure_raw_table(conn, table)
    return conn


def older_than_the_first_window(warehouse: Path) -> list[str]:
    """The reviewable incidents resolved before the window, newest first."""
    with before_the_first_review_sync(warehouse) as conn:
        return [incident_id for incident_id, _ in older_incidents(conn, window_start(conn, WINDOW.days), 10**6)]


def resolved_at(warehouse: Path) -> dict[str, datetime]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return dict(conn.execute("select id, resolved_at from raw.pagerduty__incidents").fetchall())


def window_incidents(warehouse: Path) -> list[str]:
    with before_the_first_review_sync(warehouse) as conn:
        return incidents_needing_review(conn, window_start(conn, WINDOW.days))


def pagerduty_requests(sandbox) -> int:
    return sum(count for key, count in sandbox.request_counts.items() if key.startswith("pagerduty "))


def test_older_reviews_arrive_over_nights_each_older_incident_asked_once_and_no_night_is_rate_limited(
        org, tmp_path, asked):
    warehouse = tmp_path / "warehouse.duckdb"
    served = {review.id for review in org.incident_reviews if review.created_at < org.as_of}
    with start_sandbox(org, rate_limit_per_minute=RATE_LIMIT_PER_MINUTE) as sandbox:
        # The first night, its incidents first: what its reviews have to go through.
        incidents_only, _ = night(sandbox, warehouse, org, assets=REVIEWS_SYNC[:-1])
        assert incidents_only.success
        older = older_than_the_first_window(warehouse)
        first, messages = night(sandbox, warehouse, org)
        assert first.success
        nights = math.ceil(len(older) / OLDER_INCIDENTS_PER_RUN)
        assert nights >= 2
        # The first night asked about the window and the newest slice of the older incidents.
        asked_older = [incident for incident in asked if incident in set(older)]
        assert asked_older == older[:OLDER_INCIDENTS_PER_RUN]
        assert progress(messages)[0] == OLDER_INCIDENTS_PER_RUN
        assert progress(messages)[2] == len(older) - OLDER_INCIDENTS_PER_RUN
        assert "QOLDREVIEW0" not in held(warehouse, "pagerduty__incident_reviews")  # the oldest: not yet
        lefts = [progress(messages)[2]]
        requests = [pagerduty_requests(sandbox)]
        limited = rate_limited(first, messages)
        for _ in range(nights - 1):
            before = pagerduty_requests(sandbox)
            later, messages = night(sandbox, warehouse, org)
            assert later.success
            lefts.append(progress(messages)[2])
            requests.append(pagerduty_requests(sandbox) - before)
            limited += rate_limited(later, messages)
        # Every older incident asked about once, newest first, and every review PagerDuty has held.
        assert [incident for incident in asked if incident in set(older)] == older
        assert held(warehouse, "pagerduty__incident_reviews") == served and OLD_REVIEWS <= served
        assert OLD_ITEMS <= held(warehouse, "pagerduty__review_action_items")
        assert lefts == sorted(lefts, reverse=True) and lefts[-1] == 0
        oldest = resolved_at(warehouse)[older[-1]]
        with duckdb.connect(str(warehouse)) as conn:
            assert reviews_asked_back_to(conn) == oldest
        assert progress(messages)[1] == f"{oldest:%Y-%m-%d}"

        # Once the history is through, a night asks about the window only.
        before, asked_before = pagerduty_requests(sandbox), len(asked)
        done, messages = night(sandbox, warehouse, org)
        assert done.success
        assert progress(messages) == (0, f"{oldest:%Y-%m-%d}", 0)
        assert not set(asked[asked_before:]) & set(older)
        requests.append(pagerduty_requests(sandbox) - before)
        limited += rate_limited(done, messages)
    # Well under the rate limit every night, never a 429.
    assert max(requests) < RATE_LIMIT_PER_MINUTE / 2, requests
    assert not limited


def test_a_run_that_dies_mid_slice_resumes_from_its_last_batch(org, tmp_path, asked, monkeypatch):
    # Slices of 30 older incidents, written in batches of 10; the token is revoked as the 25th
    # older incident's review is asked for (401 from then on), and the run dies in its third batch.
    monkeypatch.setattr(reviews, "BATCH_INCIDENTS", 10)
    warehouse = tmp_path / "warehouse.duckdb"
    config = {"older_incidents_per_run": 30}
    with start_sandbox(org) as sandbox:
        incidents_only, _ = night(sandbox, warehouse, org, assets=REVIEWS_SYNC[:-1])
        assert incidents_only.success
        window = window_incidents(warehouse)
        older = older_than_the_first_window(warehouse)
        sandbox.inject_fault("pagerduty", "expired_token", path="/incidents/{id}/review",
                             after=len(window) + 24, times=None)
        dead, _ = night(sandbox, warehouse, org, config)
        assert not dead.success
        assert [incident for incident in asked if incident in set(older)][:25] == older[:25]
        marked = resolved_at(warehouse)[older[19]]
        with duckdb.connect(str(warehouse)) as conn:
            # Two batches written and marked: every incident resolved from the 20th's time on.
            assert reviews_asked_back_to(conn) == marked

        sandbox.clear_faults()
        asked.clear()
        resumed, messages = night(sandbox, warehouse, org, config)
        assert resumed.success
    # The next run goes on from the 21st (the batch that died was never written), for a slice.
    assert [incident for incident in asked if incident in set(older)] == older[20:50]
    assert progress(messages)[0] == 30 and progress(messages)[2] == len(older) - 50


@pytest.mark.slow
def test_the_demos_first_night_asks_about_one_slice_and_stays_well_under_the_rate_limit(tmp_path, asked):
    # The demo's organisation (30 teams, 24 months: about 1,700 reviewable incidents before the
    # window); its first night's PagerDuty sync, timelines included, against the sandbox's 960 a
    # minute. Asking about the whole history at once went past it (429s, waits of 55-59 s).
    org = generate(OrgSpec(seed=7, n_teams=30, n_months=24))
    with start_sandbox(org, rate_limit_per_minute=RATE_LIMIT_PER_MINUTE) as sandbox:
        first, messages = night(sandbox, tmp_path / "warehouse.duckdb", org, assets=[pagerduty_log_entries,
                                                                                  *REVIEWS_SYNC])
        requests = pagerduty_requests(sandbox)
    assert first.success
    asked_older, _, left = progress(messages)
    assert asked_older == OLDER_INCIDENTS_PER_RUN and left > 10 * OLDER_INCIDENTS_PER_RUN
    assert requests < RATE_LIMIT_PER_MINUTE * 3 / 4, requests
    assert not rate_limited(first, messages)


def incident(incident_id: str, created: str, resolved: str) -> dict:
    return {"id": incident_id, "incident_number": int(incident_id[1:]), "status": "resolved", "urgency": "high",
            "created_at": created, "updated_at": resolved, "resolved_at": resolved}


def test_a_run_after_nights_without_one_asks_about_the_incidents_resolved_since_the_last(org, tmp_path, asked):
    """An outage longer than the window: the incidents resolved between the last run's window
    and this one's were in no window, and above the backfill's mark. They are asked about."""
    warehouse = tmp_path / "warehouse.duckdb"
    no_backfill = {"older_incidents_per_run": 0}
    with start_sandbox(org, rate_limit_per_minute=RATE_LIMIT_PER_MINUTE) as sandbox:
        assert night(sandbox, warehouse, org, no_backfill)[0].success
        # As if that run had been 20 days before the window's start: its window ended then.
        with duckdb.connect(str(warehouse)) as conn:
            since = window_start(conn, WINDOW.days)
            last_run = since - timedelta(days=20)
            write_batch(conn, reviews.REVIEWS, [], stream=reviews.WINDOW_STREAM,
                        high_water_mark=last_run.replace(tzinfo=UTC))
            missed = [incident_id for incident_id, at in older_incidents(conn, since, 10**6) if at >= last_run]
        assert missed
        asked.clear()
        result, messages = night(sandbox, warehouse, org, no_backfill)
    assert result.success
    assert set(missed) <= set(asked)
    assert any(f"no review sync since {last_run:%Y-%m-%d}" in message for message in messages)


def test_a_slice_never_splits_incidents_resolved_at_one_moment(tmp_path):
    # P2 and P3 were resolved at the same second: a slice of 2 from P4 down takes both, so the
    # mark (a resolve time) cannot leave one behind; the next slice starts below them.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        for table in ("pagerduty__incidents", "pagerduty__incident_reviews", "pagerduty__review_action_items"):
            ensure_raw_table(conn, table)
        write_batch(conn, "pagerduty__incidents", [
            incident("P1", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z"),
            incident("P2", "2024-02-01T00:00:00Z", "2024-02-01T02:00:00Z"),
            incident("P3", "2024-02-01T01:00:00Z", "2024-02-01T02:00:00Z"),
            incident("P4", "2024-03-01T00:00:00Z", "2024-03-01T02:00:00Z"),
            incident("P5", "2024-09-01T00:00:00Z", "2024-09-01T02:00:00Z")])
        before = datetime(2024, 6, 1)
        assert [i for i, _ in older_incidents(conn, before, 2)] == ["P4", "P3", "P2"]
        assert [i for i, _ in older_incidents(conn, before, 1)] == ["P4"]
        assert [i for i, _ in older_incidents(conn, datetime(2024, 2, 1, 2), 5)] == ["P1"]
        assert older_incidents(conn, before, 0) == []


def test_the_docs_state_the_slice_default_of_the_code():
    for doc in (REPO / "README.md", REPO / "docs" / "metrics.md"):
        stated = re.findall(r"`older_incidents_per_run`[^.]*?default (\d+)", doc.read_text())
        assert stated and set(stated) == {str(OLDER_INCIDENTS_PER_RUN)}, f"{doc.name} states {stated}"
