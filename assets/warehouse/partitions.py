"""Monthly partitions of the warehouse's time-sliced marts.

A partition is a calendar month (UTC) of ``period_month``. Partitions start at the first
month the pipeline syncs by default and run through the current, still open month, so the
nightly run can refresh it.
"""

from datetime import UTC, datetime, timedelta

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


def sync_history_start(asset: str, history_start: str) -> datetime:
    """``history_start``, the run config of the API sync ``asset``, as a UTC time. The marts
    count incidents and tickets from HISTORY_START, so a sync starting later would leave the
    months between with none, and the models would fit them as months of zero incidents: that
    fails the step before any request. An earlier start only syncs more than the marts show."""
    try:
        start = datetime.fromisoformat(history_start)
    except ValueError:
        raise dg.Failure(allow_retries=False, description=(
            f"{asset}: run config history_start {history_start!r} is not an ISO date (YYYY-MM-DD): set it to "
            f"{HISTORY_START} (HISTORY_START, the marts' first month) or earlier, or leave it out.")) from None
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    first_month = datetime.fromisoformat(HISTORY_START).replace(tzinfo=UTC)
    if start > first_month:
        month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        first_full_month = month if month == start else (month + timedelta(days=32)).replace(day=1)
        raise dg.Failure(allow_retries=False, description=(
            f"{asset}: run config history_start {history_start} is later than the marts' first month "
            f"{HISTORY_START} (HISTORY_START in assets/warehouse/partitions.py). The months from {HISTORY_START} "
            f"up to {history_start} would count no incidents and no tickets, and the models would fit them as "
            f"months of zeros. Nothing was requested: set history_start to {HISTORY_START} or earlier (or leave it "
            f"out), or, if the accounts hold nothing before {history_start}, set HISTORY_START to "
            f"{first_full_month:%Y-%m-%d} and the three syncs' history_start with it."))
    return start


def every_month_tags() -> dict[str, str]:
    """Tags for a run that rebuilds every month, from ``HISTORY_START`` to the current one."""
    keys = monthly_partitions.get_partition_keys()
    return {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}
