"""Monthly partitions of the warehouse's time-sliced marts.

A partition is a calendar month (UTC) of ``period_month``. Partitions start at the first
month the pipeline syncs by default and run through the current, still open month, so the
nightly run can refresh it.
"""

import dagster as dg

HISTORY_START = "2024-01-01"

# A month is reported and fitted once it has ended (UTC): the still open month's rows hold a few
# days of incidents and tickets against the whole month's opening headcount. The mart keeps it
# (the nightly run refreshes it); the models and the report read the months this selects.
CLOSED_MONTHS = "period_month < date_trunc('month', timezone('UTC', current_timestamp))"

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=HISTORY_START, end_offset=1)

# Run tags that make one run cover a range of partitions (Dagster's single-run backfills).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def every_month_tags() -> dict[str, str]:
    """Tags for a run that rebuilds every month, from ``HISTORY_START`` to the current one."""
    keys = monthly_partitions.get_partition_keys()
    return {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}
