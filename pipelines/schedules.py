"""The nightly job and its schedule."""

import dagster as dg

from assets.warehouse.dead_runs import freeing_dead_run_slots
from assets.warehouse.partitions import every_month_tags

# Steps run one after another in the run's own process: the warehouse allows one writer, so
# nothing is gained by a process per step, and each would pay seconds of start-up. The
# warehouse pool (assets/warehouse/pool.py) keeps other runs' steps out meanwhile.
nightly_job = dg.define_asset_job(
    "nightly",
    # The Qualtrics export has its own job: it runs only where Qualtrics is configured.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("qualtrics"),
    description="Sync PagerDuty and Jira, reload the landing folder, rebuild the marts and refit the models.",
    executor_def=freeing_dead_run_slots(dg.in_process_executor),
)

# 02:00 UTC: after the working day in Europe and the Americas, and before the CIO's morning in
# either. Cron is evaluated in `execution_timezone`, so the time does not move with daylight saving.
NIGHTLY_CRON = "0 2 * * *"
NIGHTLY_TIMEZONE = "UTC"

@dg.schedule(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=NIGHTLY_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Runs the nightly job every day at 02:00 UTC over every month of the marts, so changes
    to old incidents and re-sent exports reach every month they touch."""
    return dg.RunRequest(tags=every_month_tags())
