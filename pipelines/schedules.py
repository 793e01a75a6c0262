"""The nightly job and its schedule."""

import dagster as dg

# The default multiprocess executor: the warehouse pool (pipelines/warehouse_pool.py) lets one
# step at a time open the DuckDB file, across this run and any other.
nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    description="Sync PagerDuty and Jira, reload the landing folder, rebuild the marts and refit the models.",
)

# 02:00 UTC: after the working day in Europe and the Americas, and before the CIO's morning in
# either. Cron is evaluated in `execution_timezone`, so the time does not move with daylight saving.
NIGHTLY_CRON = "0 2 * * *"
NIGHTLY_TIMEZONE = "UTC"

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=NIGHTLY_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the nightly job every day at 02:00 UTC.",
)
