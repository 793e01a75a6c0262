"""The embedded default, end to end: generate a synthetic organisation, serve it from the
local PagerDuty/Jira sandbox, run the nightly job into a DuckDB file and print the results.

    psafe-demo [--seed 7] [--teams 30] [--months 24] [--workdir data]
"""

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from assets.identity import salt_fingerprint
from assets.jira.assets import STREAM as JIRA_STREAM
from assets.jira.resource import JiraResource
from assets.landing.resource import LandingFolderResource
from assets.pagerduty.resource import PagerDutyResource
from assets.report.resource import ReportFolderResource
from assets.warehouse.partitions import every_month_tags
from assets.warehouse.raw_tables import stored_salt_fingerprint
from assets.warehouse.resource import WarehouseResource
from pipelines.definitions import defs
from pipelines.progress import with_progress
from pipelines.sandbox.server import Sandbox
from pipelines.synthetic.org import Organisation, OrgSpec, generate, write_landing

SANDBOX_PAGERDUTY_TOKEN = "sandbox-pd-token"
SANDBOX_JIRA_EMAIL = "sandbox@example.com"
SANDBOX_JIRA_TOKEN = "sandbox-jira-token"
# At least MIN_SALT_LENGTH characters, as a deployment's must be (a shorter one warns on every run).
SANDBOX_HR_SALT = "psafe-sandbox-salt-of-the-synthetic-organisation"
# The incident-level regression of log TTR on lagged safety, printed next to the ground truth.
INCIDENT_TTR_KPI = "log TTR (incident level)"


def start_sandbox(org: Organisation, **options) -> Sandbox:
    return Sandbox(
        org,
        pagerduty_token=SANDBOX_PAGERDUTY_TOKEN,
        jira_email=SANDBOX_JIRA_EMAIL,
        jira_token=SANDBOX_JIRA_TOKEN,
        **options,
    )


def sandbox_resources(sandbox: Sandbox, warehouse: Path, landing: Path) -> dict:
    """Resources pointing the pipeline at a running sandbox, a landing folder and a warehouse."""
    return {
        "pagerduty": PagerDutyResource(
            api_token=SANDBOX_PAGERDUTY_TOKEN,
            base_url=sandbox.pagerduty_url,
            ca_bundle_path=sandbox.ca_bundle_path,
        ),
        "jira": JiraResource(
            server_url=sandbox.jira_url,
            email=SANDBOX_JIRA_EMAIL,
            api_token=SANDBOX_JIRA_TOKEN,
            ca_bundle_path=sandbox.ca_bundle_path,
            kpi_rules_path=sandbox.kpi_rules_path,
            identity_salt=SANDBOX_HR_SALT,
        ),
        # The demo writes the landing files itself, so they are complete when the run starts.
        "landing": LandingFolderResource(path=str(landing), hr_id_salt=SANDBOX_HR_SALT, settle_seconds=0),
        "duckdb": WarehouseResource(database=str(warehouse)),
        "report_folder": ReportFolderResource(path=str(warehouse.parent / "report")),
    }


def earlier_demo_warehouse(warehouse: Path) -> str | None:
    """Why the demo cannot run on ``warehouse``: its Jira issues were pseudonymised with another
    salt (an earlier release's demo had a shorter one), so the sync would stop; else None."""
    if not warehouse.exists():
        return None
    with duckdb.connect(str(warehouse)) as conn:
        stored = stored_salt_fingerprint(conn, JIRA_STREAM)
    if stored is None or stored == salt_fingerprint(SANDBOX_HR_SALT):
        return None
    return (f"{warehouse} was made by an earlier release's demo, whose sandbox salt was another one: remove "
            f"{warehouse.parent} (or give --workdir a new folder) and run the demo again.")


def history_run_config(org: Organisation) -> dict:
    start = {"config": {"history_start": org.spec.start.isoformat()}}
    return {
        "ops": {
            "raw__pagerduty__incidents": start,
            "raw__pagerduty__log_entries": start,
            "raw__jira__issues": start,
        }
    }


def run_nightly(
    sandbox: Sandbox, org: Organisation, warehouse: Path, landing: Path, log_file: Path | None = None
) -> dg.ExecuteInProcessResult:
    """Run the nightly job in this process. With ``log_file``, the terminal shows a progress
    bar and warnings only, and the full Dagster log goes to that file."""
    job = defs().resolve_job_def("nightly")
    run_config = history_run_config(org)
    if log_file is not None:
        job, logger_config = with_progress(job, log_file)
        run_config = {**run_config, **logger_config}
    with contextlib.ExitStack() as output:
        if log_file is not None:
            # What dbt prints of its errors goes to the log, not the terminal.
            output.enter_context(contextlib.redirect_stdout(output.enter_context(log_file.open("a"))))
        return job.execute_in_process(
            run_config=run_config,
            resources=sandbox_resources(sandbox, warehouse, landing),
            tags=every_month_tags(),
            raise_on_error=False,
        )


def report(warehouse: Path, org: Organisation) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        correlations = conn.sql(
            "select kpi, round(size_adjusted_r, 3) as partial_r, round(size_adjusted_q_value, 3) as partial_q, "
            "round(r, 3) as r, round(ci_low, 3) as ci_low, round(ci_high, 3) as ci_high, round(q_value, 3) as q, "
            "n_teams, n_team_months from models.kpi_correlations"
        ).df()
        regression = conn.sql(
            f"select * from models.kpi_safety_effects where kpi = '{INCIDENT_TTR_KPI}' and role = 'main'"
        ).df().iloc[0]
        effects = conn.sql(
            "select kpi, construct, scale, round(estimate, 3) as estimate, round(ci_low, 3) as ci_low, "
            "round(ci_high, 3) as ci_high, round(q_value, 4) as q, n_teams from models.kpi_safety_effects "
            "where role = 'main' order by kpi, construct"
        ).df()
    truth = org.truth.log_ttr_per_sd
    lines = [
        "KPI correlation table (between teams: mean lagged safety vs KPI; partial_r allows for team size, r does "
        "not; r's 95% team-bootstrap CI; BH q over the table)",
        correlations.to_string(index=False),
        "",
        "Time to resolve: log TTR per SD of lagged team safety (open incidents censored; adjusted for log "
        "headcount and quarter, team-clustered)",
        f"  estimate {regression.estimate:+.3f}  95% CI [{regression.ci_low:+.3f}, {regression.ci_high:+.3f}]"
        f"  {f'p={regression.p_value:.3g}' if math.isfinite(regression.p_value) else 'no test (see the warnings)'}"
        f"  {regression.n_teams} teams, {regression.n_obs} incidents",
        f"  = {math.expm1(regression.estimate):+.1%} time to resolve per SD of safety",
        f"  allowing for survey measurement error: {regression.estimate_corrected:+.3f} per SD of true safety "
        f"(95% CI [{regression.ci_low_corrected:+.3f}, {regression.ci_high_corrected:+.3f}])",
        f"  ground truth of this synthetic organisation: {truth:+.3f}",
    ]
    if regression.warnings:
        lines.append(f"  caveat: {regression.warnings}")
    lines += [
        "",
        "Safety vs each KPI (per SD of lagged safety, within and between teams; 95% CI; Benjamini-Hochberg q)",
        effects.to_string(index=False),
        "These are associations, not causes; safer teams may also report more incidents.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--workdir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)

    started = time.monotonic()
    spec = OrgSpec(seed=args.seed, n_teams=args.teams, n_months=args.months)
    try:
        org = generate(spec)
    except ValueError as error:
        parser.error(str(error))
    landing = args.workdir / "landing"
    warehouse = args.workdir / "warehouse.duckdb"
    log_file = args.workdir / "nightly.log"
    if earlier := earlier_demo_warehouse(warehouse):
        print(earlier, file=sys.stderr)
        return 1
    write_landing(org, landing)
    print(
        f"[1/3] generated {len(org.teams)} teams, {len(org.incidents)} incidents, "
        f"{len(org.tickets)} tickets, {len(org.survey_rows)} survey responses -> {landing}",
        flush=True,
    )
    with start_sandbox(org) as sandbox:
        print(f"[2/3] sandbox: PagerDuty {sandbox.pagerduty_url}, Jira {sandbox.jira_url}; "
              f"running the nightly job (full Dagster log: {log_file})", flush=True)
        result = run_nightly(sandbox, org, warehouse, landing, log_file)
    if not result.success:
        print(f"the nightly job failed; see the errors above and the full log in {log_file}", file=sys.stderr)
        return 1
    assets = {event.asset_key for event in result.get_asset_materialization_events()}
    print(f"[3/3] nightly job materialized {len(assets)} assets into {warehouse} "
          f"in {time.monotonic() - started:.0f} s\n", flush=True)
    print(report(warehouse, org))
    report_dir = warehouse.parent / "report"
    print(f"\nReport for CIO staff: {report_dir / 'psafe_report.html'} (open in a browser); "
          f"its tables as CSV and psafe_report.xlsx in {report_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
