"""Serve a synthetic organisation as local PagerDuty and Jira Cloud APIs until Ctrl-C.

    python -m pipelines.sandbox [--seed 7] [--teams 30] [--months 24] [--as-of 2025-06-01]
                                [--pagerduty-port 8443] [--jira-port 8444] [--landing data/landing]

``--as-of`` serves the organisation as it stood at an earlier moment (UTC); restart it with a
later one to watch an incremental sync pick up what happened in between.

Prints the URLs, credentials and CA certificate path, and ``export`` lines that point the
pipeline (and the official clients) at the sandbox.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pipelines.demo import SANDBOX_HR_SALT
from pipelines.sandbox.server import Sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0..65535; 0 picks a free one)")
    return port


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.sandbox", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pagerduty-port", type=_port, default=8443)
    parser.add_argument("--jira-port", type=_port, default=8444)
    parser.add_argument("--pagerduty-token", default="sandbox-pd-token")
    parser.add_argument("--jira-email", default="sandbox@example.com")
    parser.add_argument("--jira-token", default="sandbox-jira-token")
    parser.add_argument("--rate-limit-per-minute", type=int, default=960)
    parser.add_argument("--as-of", type=_moment, default=None,
                        help="serve the organisation as it stood at this moment (default: its cut-off)")
    parser.add_argument("--landing", type=Path, default=None, metavar="DIR",
                        help="also write the organisation's survey/HR exports and team map into DIR and print "
                             "the exports that point the whole pipeline at it (warehouse and report beside DIR)")
    args = parser.parse_args(argv)

    try:
        org = generate(OrgSpec(seed=args.seed, n_teams=args.teams, n_months=args.months))
        sandbox = Sandbox(
            org,
            pagerduty_token=args.pagerduty_token,
            jira_email=args.jira_email,
            jira_token=args.jira_token,
            host=args.host,
            pagerduty_port=args.pagerduty_port,
            jira_port=args.jira_port,
            rate_limit_per_minute=args.rate_limit_per_minute,
            as_of=args.as_of,
        )
    except ValueError as error:
        parser.error(str(error))
    try:
        sandbox.start()
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        print(f"Synthetic organisation: {len(org.teams)} teams, {len(org.incidents)} incidents, "
              f"{len(org.tickets)} tickets, served as of {sandbox.as_of:%Y-%m-%d %H:%M} UTC")
        print(f"PagerDuty  {sandbox.pagerduty_url}  token {args.pagerduty_token}")
        print(f"Jira       {sandbox.jira_url}  {args.jira_email} / {args.jira_token}")
        print(f"CA         {sandbox.ca_bundle_path}")
        print(f"KPI rules  {sandbox.kpi_rules_path} (PSAFE_KPI_RULES: the site's review field)")
        print()
        exports = {
            "PAGERDUTY_API_TOKEN": args.pagerduty_token,
            "PAGERDUTY_URL": sandbox.pagerduty_url,
            "JIRA_URL": sandbox.jira_url,
            "JIRA_EMAIL": args.jira_email,
            "JIRA_API_TOKEN": args.jira_token,
            "SSL_CERT_FILE": sandbox.ca_bundle_path,
            "REQUESTS_CA_BUNDLE": sandbox.ca_bundle_path,
            # The site's reviews carry their incident in its own custom field, which only these
            # rules read: with the shipped ones a run finds fewer reviewed incidents than psafe-demo.
            "PSAFE_KPI_RULES": sandbox.kpi_rules_path,
        }
        if args.landing is not None:
            landing = write_landing(org, args.landing)["team_map"].parent.resolve()
            exports |= {
                "PSAFE_LANDING_DIR": str(landing),
                "PSAFE_HR_ID_SALT": SANDBOX_HR_SALT,
                "PSAFE_WAREHOUSE": str(landing.parent / "warehouse.duckdb"),
                "PSAFE_REPORT_DIR": str(landing.parent / "report"),
            }
        for name, value in exports.items():
            print(f"export {name}={shlex.quote(value)}")
        print("\nServing until Ctrl-C.", flush=True)
        # Short sleeps, not one endless wait: Ctrl-C's signal can reach one of the servers'
        # threads, and KeyboardInterrupt is raised only when the main thread runs Python code
        # again, which an endless wait never does.
        while True:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
