"""Closed months whose incidents and tickets count for no team: no HR headcount snapshot.

The mart's team-months come from the headcount snapshots only (a team-month is a team with
people that month), so a closed month whose snapshot has not arrived (a late monthly
``hr_headcount.csv``) has no team-month at all: its incidents, tickets and leavers leave the
mart, the models and the report, and the month before takes its opening snapshot alone as its
average headcount. The check ``closed_months_have_headcount`` names each such month with what it
holds, and the report's coverage says how many of its incidents fall in them (one query for both).
"""

from dataclasses import dataclass
from datetime import date

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.warehouse.partitions import CLOSED_MONTHS, HISTORY_START
from assets.warehouse.pool import WAREHOUSE_POOL

# Months from HISTORY_START that have ended, hold incidents or tickets of a team, and have no
# team-month: what the team-month KPIs would count there if the month had a headcount snapshot.
_MONTHS_WITHOUT_HEADCOUNT_SQL = f"""
with activity as (
    select period_month, count(*) as incidents, 0 as tickets
    from marts.fct_incidents where team is not null group by period_month
    union all
    select period_month, 0 as incidents, count(*) as tickets
    from marts.fct_tickets where team is not null group by period_month
)

select period_month, sum(incidents)::bigint as incidents, sum(tickets)::bigint as tickets
from activity
where period_month >= '{HISTORY_START}'::date and {CLOSED_MONTHS}
    and period_month not in (select period_month from marts.mart_team_month)
group by period_month
order by period_month
"""


@dataclass(frozen=True)
class MonthWithoutHeadcount:
    period_month: date
    incidents: int
    tickets: int

    def __str__(self) -> str:
        return f"{self.period_month:%Y-%m} (incidents {self.incidents}, tickets {self.tickets})"


def months_without_headcount(conn: duckdb.DuckDBPyConnection) -> list[MonthWithoutHeadcount]:
    return [MonthWithoutHeadcount(month, int(incidents), int(tickets))
            for month, incidents, tickets in conn.sql(_MONTHS_WITHOUT_HEADCOUNT_SQL).fetchall()]


def headcount_gaps_report(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    gaps = months_without_headcount(conn)
    snapshots = ", ".join(f"{gap.period_month:%Y-%m-%d}" for gap in gaps)
    description = (
        "Closed months with incidents or tickets but no HR headcount snapshot, so no team-month: "
        + "; ".join(str(gap) for gap in gaps)
        + ". Their incidents, tickets and leavers count for no team, in the mart, the models and the report, and "
        "the month before each takes its opening headcount alone as its average. Deliver each month's headcount "
        f"snapshot to the landing folder (hr_headcount.csv rows with snapshot_date {snapshots}, or a current "
        "roster that covers the month); the next run adds the months."
        if gaps else f"every closed month from {HISTORY_START} with incidents or tickets has an HR headcount snapshot"
    )
    return dg.AssetCheckResult(
        passed=not gaps,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"months_without_headcount": dg.MetadataValue.json([str(gap) for gap in gaps]),
                  "months_without_headcount_count": len(gaps)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "mart_team_month"]),
    additional_deps=[dg.AssetKey(["marts", "fct_incidents"]), dg.AssetKey(["marts", "fct_tickets"])],
    name="closed_months_have_headcount",
    description=f"Warns naming each closed month from {HISTORY_START} (HISTORY_START) that has incidents or "
    "tickets but no HR headcount snapshot (a late monthly file): it has no team-month, so its incidents, tickets and "
    "leavers count for no team. Deliver the month's snapshot, dated its first day.",
)
def closed_months_have_headcount(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        return headcount_gaps_report(conn)
