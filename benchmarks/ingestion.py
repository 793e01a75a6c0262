"""Ingestion benchmark: requests made against the minimum possible, and sync times, for a
large sandbox organisation (default: about 100,000 incidents and 300,000 tickets).

    .venv/bin/python benchmarks/ingestion.py [--incidents 100000] [--tickets 300000]
        [--teams 40] [--months 24] [--rate-limit 960] [--workdir DIR]

It generates the organisation, serves it from the sandbox one day before its cut-off with
PagerDuty's real rate limit (960 requests a minute), runs a full sync of the raw PagerDuty
and Jira assets into a fresh DuckDB file, moves the sandbox one day on and runs the nightly
incremental sync. The minimum is one request per 100 records (the largest page either API
serves) plus, for Jira, the changelog pages beyond the embedded one; it ignores the windows
the six-month span and the 10,000-record offset cap force, so it is a floor, not a target.
This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb

from assets.jira.assets import jira_issues
from assets.jira.resource import JiraResource
from assets.pagerduty.assets import pagerduty_incidents, pagerduty_log_entries, pagerduty_services, pagerduty_teams
from assets.pagerduty.resource import PagerDutyResource
from assets.warehouse.resource import WarehouseResource
from pipelines.demo import SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, SANDBOX_PAGERDUTY_TOKEN, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate

PAGE = 100
EMBEDDED_CHANGELOG = 40
RAW_ASSETS = [pagerduty_teams, pagerduty_services, pagerduty_log_entries, pagerduty_incidents, jira_issues]


def spec_for(incidents: int, tickets: int, teams: int, months: int, seed: int) -> OrgSpec:
    """An OrgSpec whose expected volumes are ``incidents`` and ``tickets``. Headcounts are the
    generator's first draw, so a short organisation with the same seed and teams has them."""
    heads = sum(t.headcount for t in generate(OrgSpec(seed=seed, n_teams=teams, n_months=6)).teams)
    return OrgSpec(seed=seed, n_teams=teams, n_months=months,
                   incidents_per_head_month=incidents / (heads * months),
                   tickets_per_head_month=tickets / (heads * months))


def sync(sandbox, warehouse: Path, history_start: str) -> tuple[float, Counter]:
    before = Counter(sandbox.request_counts)
    start = {"config": {"history_start": history_start}}
    resources = {
        "pagerduty": PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                       ca_bundle_path=sandbox.ca_bundle_path),
        "jira": JiraResource(server_url=sandbox.jira_url, email=SANDBOX_JIRA_EMAIL, api_token=SANDBOX_JIRA_TOKEN,
                             ca_bundle_path=sandbox.ca_bundle_path),
        "duckdb": WarehouseResource(database=str(warehouse)),
    }
    started = time.monotonic()
    result = dg.materialize(
        RAW_ASSETS, resources=resources,
        run_config={"ops": {op: start for op in
                            ("raw__pagerduty__incidents", "raw__pagerduty__log_entries", "raw__jira__issues")}},
    )
    elapsed = time.monotonic() - started
    if not result.success:
        raise SystemExit("the sync failed; see the log above")
    return elapsed, Counter(sandbox.request_counts) - before


def served_volumes(org, moment, since=None) -> dict[str, int]:
    """What the sandbox serves at ``moment``; ``tickets_changed``: created or moved since ``since``."""
    incidents = [i for i in org.incidents if i.created_at < moment]
    steps = ("created_at", "acknowledged_at", "impact_recorded_at", "resolved_at", "first_resolved_at", "reopened_at")
    entries = sum(1 for i in incidents for step in steps if getattr(i, step) and getattr(i, step) < moment)
    tickets = [t for t in org.tickets if t.created < moment]
    histories = [sum(c.created < moment for c in t.changelog) for t in tickets]
    return {
        "teams": len(org.teams), "services": len(org.services), "incidents": len(incidents),
        "log_entries": entries, "tickets": len(tickets),
        "changelog_pages": sum(math.ceil(h / PAGE) for h in histories if h > EMBEDDED_CHANGELOG),
        "changelog_histories": sum(histories),
        "tickets_changed": sum(1 for t in tickets if since is None or t.created >= since
                               or any(since <= c.created < moment for c in t.changelog)),
    }


def minimum_requests(volumes: dict[str, int], before: dict[str, int] | None = None) -> dict[str, int]:
    """One request per 100 new or changed records (``before``: what an earlier sync held)."""
    def delta(name: str) -> int:
        return volumes[name] - (before[name] if before else 0)

    return {
        "pagerduty": (math.ceil(volumes["teams"] / PAGE) + math.ceil(volumes["services"] / PAGE)
                      + math.ceil(delta("incidents") / PAGE) + math.ceil(delta("log_entries") / PAGE)),
        "jira": 1 + math.ceil(max(volumes["tickets_changed"], 1) / PAGE)
                + (volumes["changelog_pages"] if not before else 0),
    }


def report(title: str, elapsed: float, requests: Counter, floor: dict[str, int], rate_limit: int) -> None:
    print(f"\n{title}: {elapsed:,.1f} s")
    for service in ("pagerduty", "jira"):
        made = {k.split(" ", 1)[1]: v for k, v in requests.items() if k.startswith(service)}
        total = sum(made.values())
        ratio = f"{total / floor[service]:.2f}x" if floor[service] else "-"
        print(f"  {service:9s} {total:7,d} requests, minimum {floor[service]:7,d} ({ratio})")
        for endpoint, count in sorted(made.items(), key=lambda kv: -kv[1]):
            print(f"      {count:7,d}  {endpoint}")
    pagerduty_total = sum(v for k, v in requests.items() if k.startswith("pagerduty"))
    print(f"  PagerDuty's rate limit ({rate_limit:,d} requests a minute) alone makes these {pagerduty_total:,d} "
          f"requests take at least {rate_limit_floor(pagerduty_total, rate_limit)}")


def rate_limit_floor(requests: int, per_minute: int) -> str:
    """How long ``requests`` take at most ``per_minute`` a minute, kept up: in minutes, or in
    seconds below one (a burst may go faster for its first minute, never longer)."""
    minutes = requests / per_minute
    return f"{minutes:,.1f} min" if minutes >= 1 else f"{minutes * 60:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--teams", type=int, default=40)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rate-limit", type=int, default=960, help="PagerDuty requests per minute")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    started = time.monotonic()
    org = generate(spec_for(args.incidents, args.tickets, args.teams, args.months, args.seed))
    print(f"generated {len(org.teams)} teams, {len(org.incidents):,d} incidents, {len(org.tickets):,d} tickets "
          f"in {time.monotonic() - started:.0f} s", flush=True)
    first_night, second_night = org.as_of - timedelta(days=1), org.as_of
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="psafe-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    warehouse.unlink(missing_ok=True)

    started = time.monotonic()
    with start_sandbox(org, as_of=first_night, rate_limit_per_minute=args.rate_limit) as sandbox:
        print(f"sandbox up in {time.monotonic() - started:.0f} s (serving {first_night:%Y-%m-%d})", flush=True)
        full_volumes = served_volumes(org, first_night)
        full_time, full_requests = sync(sandbox, warehouse, org.spec.start.isoformat())
        sandbox.set_as_of(second_night)
        incremental_volumes = served_volumes(org, second_night, since=first_night)
        incremental_time, incremental_requests = sync(sandbox, warehouse, org.spec.start.isoformat())

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = {table: conn.sql(f"select count(*) from raw.{table}").fetchone()[0]
                for table in ("pagerduty__incidents", "pagerduty__log_entries", "jira__issues")}
    print(f"\nserved on the first night: {full_volumes['incidents']:,d} incidents, "
          f"{full_volumes['log_entries']:,d} log entries, {full_volumes['tickets']:,d} tickets "
          f"({full_volumes['changelog_histories']:,d} changelog entries)")
    print(f"one day later: +{incremental_volumes['incidents'] - full_volumes['incidents']:,d} incidents, "
          f"+{incremental_volumes['log_entries'] - full_volumes['log_entries']:,d} log entries, "
          f"+{incremental_volumes['tickets'] - full_volumes['tickets']:,d} tickets, "
          f"{incremental_volumes['tickets_changed']:,d} tickets created or moved")
    report("full sync", full_time, full_requests, minimum_requests(full_volumes), args.rate_limit)
    report("incremental sync (one day later)", incremental_time, incremental_requests,
           minimum_requests(incremental_volumes, full_volumes), args.rate_limit)
    print(f"\nwarehouse rows: {rows}; expected {incremental_volumes['incidents']:,d} incidents, "
          f"{incremental_volumes['log_entries']:,d} log entries, {incremental_volumes['tickets']:,d} tickets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
