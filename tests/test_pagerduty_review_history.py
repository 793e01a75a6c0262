"""PagerDuty's Incident Reviews of the whole incident history reach the warehouse on the first
sync, not only those of incidents resolved in the last ``window_days``: an organisation that
has used Incident Reviews for a year gets its older months' reviews too, and later nights ask
about the window only."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from assets.pagerduty.assets import pagerduty_incidents, pagerduty_services, pagerduty_teams
from assets.pagerduty.resource import PagerDutyResource
from assets.pagerduty.reviews import IncidentReviewSyncConfig, incidents_needing_review, pagerduty_incident_reviews
from assets.warehouse.raw_tables import ensure_raw_table, write_batch
from assets.warehouse.resource import WarehouseResource
from pipelines.demo import SANDBOX_PAGERDUTY_TOKEN, start_sandbox
from pipelines.synthetic.model import IncidentReview, ReviewActionItem
from pipelines.synthetic.org import OrgSpec, generate

WINDOW = timedelta(days=IncidentReviewSyncConfig().window_days)
FAST_RETRIES = {"timeout_seconds": 0.5, "max_attempts": 4, "base_delay_seconds": 0.01, "max_delay_seconds": 5}


@pytest.fixture(scope="module")
def org():
    """A small organisation with reviews in PagerDuty for two incidents resolved long before the
    window (the generator writes them for the window's incidents only)."""
    org = generate(OrgSpec(seed=7, n_teams=2, n_months=6))
    old = [incident for incident in org.incidents
           if incident.urgency == "high" and incident.resolved_at is not None and incident.merged_into is None
           and incident.resolved_at < org.as_of - 2 * WINDOW
           and incident.pagerduty_id not in {review.incident_id for review in org.incident_reviews}][:2]
    assert len(old) == 2
    for n, incident in enumerate(old):
        done = incident.resolved_at + timedelta(days=3)
        org.incident_reviews.append(IncidentReview(
            id=f"QOLDREVIEW{n}", incident_id=incident.pagerduty_id, title=f"Review of #{incident.number}",
            created_at=incident.resolved_at + timedelta(days=1), completed_at=done,
            action_items=[ReviewActionItem(f"AOLDITEM{n}", "Add an alert", done, done + timedelta(days=2))]))
    return org


def sync_reviews(sandbox, warehouse, history_start: str) -> dg.ExecuteInProcessResult:
    definitions = dg.Definitions(
        assets=[pagerduty_teams, pagerduty_services, pagerduty_incidents, pagerduty_incident_reviews],
        resources={"pagerduty": PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                                  ca_bundle_path=sandbox.ca_bundle_path, **FAST_RETRIES),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        jobs=[dg.define_asset_job("sync")])
    result = definitions.resolve_job_def("sync").execute_in_process(
        run_config={"ops": {"raw__pagerduty__incidents": {"config": {"history_start": history_start}}}},
        raise_on_error=False)
    assert result.success
    return result


def asked(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = [m for m in result.asset_materializations_for_node("pagerduty_incident_reviews")
                         if m.asset_key.path[-1] == "pagerduty__incident_reviews"]
    return {key: value.value for key, value in materialization.metadata.items()}


def test_the_first_sync_asks_about_the_whole_history_and_later_nights_about_the_window(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    served = {review.id for review in org.incident_reviews if review.created_at < org.as_of}
    old = {"QOLDREVIEW0", "QOLDREVIEW1"}
    with start_sandbox(org) as sandbox:
        first = sync_reviews(sandbox, warehouse, org.spec.start.isoformat())
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            held = {row[0] for row in conn.sql("select id from raw.pagerduty__incident_reviews").fetchall()}
            items = {row[0] for row in conn.sql("select id from raw.pagerduty__review_action_items").fetchall()}
            reviewable = conn.sql("""select count(*) from raw.pagerduty__incidents where urgency = 'high'
                and status = 'resolved' and coalesce(resolve_reason_type, '') <> 'merge_resolve_reason'""").fetchone()[0]
        # Every reviewable incident of the history was asked about once, the old reviews stored.
        assert held == served and old <= held
        assert {"AOLDITEM0", "AOLDITEM1"} <= items
        assert asked(first)["whole_history"] is True and asked(first)["incidents_asked"] == reviewable

        second = sync_reviews(sandbox, warehouse, org.spec.start.isoformat())
    # Once the history was asked about, a night asks about the window's incidents only.
    assert asked(second)["whole_history"] is False
    assert asked(second)["incidents_asked"] < reviewable
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert old <= {row[0] for row in conn.sql("select id from raw.pagerduty__incident_reviews").fetchall()}


def incident(incident_id: str, created: str, resolved: str) -> dict:
    return {"id": incident_id, "incident_number": int(incident_id[1:]), "status": "resolved", "urgency": "high",
            "created_at": created, "updated_at": resolved, "resolved_at": resolved}


def test_incidents_loaded_before_the_history_asked_about_are_asked_about_once(tmp_path):
    # The history was asked about from P2's trigger on; an incident sync with an earlier
    # history_start then loads P1: its review was never asked for, whatever the window.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        for table in ("pagerduty__incidents", "pagerduty__incident_reviews", "pagerduty__review_action_items"):
            ensure_raw_table(conn, table)
        write_batch(conn, "pagerduty__incidents", [
            incident("P2", "2024-03-01T00:00:00Z", "2024-03-01T02:00:00Z"),
            incident("P3", "2024-09-01T00:00:00Z", "2024-09-01T02:00:00Z")],
            stream="pagerduty__incidents", high_water_mark=datetime(2024, 9, 10, tzinfo=UTC))
        assert incidents_needing_review(conn, 45) == ["P2", "P3"]  # never asked: the whole history
        write_batch(conn, "pagerduty__incident_reviews", [], stream="pagerduty__incident_reviews",
                    high_water_mark=datetime(2024, 3, 1, tzinfo=UTC))
        assert incidents_needing_review(conn, 45) == ["P3"]  # the window only
        write_batch(conn, "pagerduty__incidents", [incident("P1", "2023-11-01T00:00:00Z", "2023-11-01T02:00:00Z")])
        assert incidents_needing_review(conn, 45) == ["P1", "P3"]
