"""Closed months whose incidents and tickets count for no team: no HR headcount snapshot.

The mart's team-months come from the headcount snapshots only (a team-month is a team with
people that month), so a closed month whose snapshot has not arrived (a late monthly
``hr_headcount.csv``) has no team-month at all: its incidents, tickets and leavers leave the
mart, the models and the report, and the month before takes its opening snapshot alone as its
average headcount. The check ``closed_months_have_headcount`` names each such month with what it
holds, and the report's coverage says how many of its incidents fall in them (one query for both).

A month missing from one team's snapshots only (a monthly export that left out its org unit)
does the same to that team, and one missing from one of a team's org units leaves the team's
headcount with its other org units' people only: the check names each such team-month too
(``team_months_without_headcount``), with the org units whose snapshot is missing.
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


# The longest run of months an export may have left an org unit out of and still be named by
# the people around it: a seasonal org unit, empty for longer, is no gap.
MAX_MONTHS_LEFT_OUT = 2

# Closed months from HISTORY_START that other org units have a snapshot of (a month no org unit
# has is a whole month missing, above) and that a team's org unit has none of, while
# - people of its snapshot just before are in its snapshot just after, with at most
#   MAX_MONTHS_LEFT_OUT months left out between them, and in no snapshot of the month: left out of the export (an
#   org unit that had nobody that month, a seasonal one, has no such people); or
# - its team has incidents or tickets that month and no team-month (at either end of its
#   history: what they count for is lost).
# An org unit that stops for good (a reorganisation) or starts later without its team's
# activity is no gap.
_TEAM_MONTHS_WITHOUT_HEADCOUNT_SQL = f"""
with org_units as (
    select org_unit, team from intermediate.int_hr_org_unit_teams
),

unit_months as (
    select distinct org_unit, team, date_trunc('month', snapshot_date)::date as period_month
    from staging.stg_hr__headcount inner join org_units using (org_unit)
),

snapshot_months as (select distinct period_month from unit_months),

units as (select distinct org_unit, team from unit_months),

-- Each run of months an org unit has no snapshot of, with its snapshots just before and after.
unit_gaps as (
    select units.org_unit, units.team, snapshot_months.period_month,
        max(before.period_month) as before_month, min(after.period_month) as after_month
    from units
    cross join snapshot_months
    inner join unit_months as before
        on before.org_unit = units.org_unit and before.period_month < snapshot_months.period_month
    inner join unit_months as after
        on after.org_unit = units.org_unit and after.period_month > snapshot_months.period_month
    anti join unit_months as present
        on present.org_unit = units.org_unit and present.period_month = snapshot_months.period_month
    group by all
),

snapshot_people as (
    select org_unit, employee_id, date_trunc('month', snapshot_date)::date as period_month
    from staging.stg_hr__headcount
),

left_out as (
    select distinct unit_gaps.team, unit_gaps.org_unit, unit_gaps.period_month
    from unit_gaps
    inner join snapshot_people as before
        on before.org_unit = unit_gaps.org_unit and before.period_month = unit_gaps.before_month
    inner join snapshot_people as after
        on after.org_unit = unit_gaps.org_unit and after.period_month = unit_gaps.after_month
        and after.employee_id = before.employee_id
    anti join snapshot_people as that_month
        on that_month.employee_id = before.employee_id and that_month.period_month = unit_gaps.period_month
    where date_diff('month', unit_gaps.before_month, unit_gaps.after_month) - 1 <= {MAX_MONTHS_LEFT_OUT}
),

team_months as (select distinct team, period_month from marts.mart_team_month),

activity as (
    select team, period_month, sum(incidents)::bigint as incidents, sum(tickets)::bigint as tickets
    from (
        select team, period_month, count(*) as incidents, 0 as tickets
        from marts.fct_incidents where team is not null group by all
        union all
        select team, period_month, 0 as incidents, count(*) as tickets
        from marts.fct_tickets where team is not null group by all
    ) group by all
),

missing as (
    select team, org_unit, period_month from (
        select team, org_unit, period_month from left_out
        union
        select units.team, units.org_unit, activity.period_month
        from activity inner join units using (team) inner join snapshot_months using (period_month)
        anti join team_months using (team, period_month)
    )
    anti join unit_months using (org_unit, period_month)
    where period_month >= '{HISTORY_START}'::date and {CLOSED_MONTHS}
)

select missing.team, missing.period_month, list(missing.org_unit order by missing.org_unit) as org_units,
    team_months.team is not null as has_team_month,
    coalesce(any_value(activity.incidents), 0) as incidents, coalesce(any_value(activity.tickets), 0) as tickets
from missing
left join team_months using (team, period_month)
left join activity using (team, period_month)
group by all
order by missing.team, missing.period_month
"""


@dataclass(frozen=True)
class TeamMonthWithoutHeadcount:
    team: str
    period_month: date
    org_units: tuple[str, ...]
    # The team's other org units have a snapshot that month: a team-month, short of these units.
    has_team_month: bool
    incidents: int
    tickets: int

    def __str__(self) -> str:
        effect = ("its headcount counts its other org units only" if self.has_team_month else
                  f"no team-month, incidents {self.incidents}, tickets {self.tickets}")
        return f"{self.team} {self.period_month:%Y-%m} (no snapshot of {', '.join(self.org_units)}: {effect})"


def team_months_without_headcount(conn: duckdb.DuckDBPyConnection) -> list[TeamMonthWithoutHeadcount]:
    return [TeamMonthWithoutHeadcount(team, month, tuple(org_units), bool(has_team_month), int(incidents),
                                      int(tickets))
            for team, month, org_units, has_team_month, incidents, tickets
            in conn.sql(_TEAM_MONTHS_WITHOUT_HEADCOUNT_SQL).fetchall()]


def headcount_gaps_report(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    gaps = months_without_headcount(conn)
    team_gaps = team_months_without_headcount(conn)
    snapshots = ", ".join(f"{gap.period_month:%Y-%m-%d}" for gap in gaps)
    months = (
        "Closed months with incidents or tickets but no HR headcount snapshot, so no team-month: "
        + "; ".join(str(gap) for gap in gaps)
        + ". Their incidents, tickets and leavers count for no team, in the mart, the models and the report, and "
        "the month before each takes its opening headcount alone as its average. Deliver each month's headcount "
        f"snapshot to the landing folder (hr_headcount.csv rows with snapshot_date {snapshots}, or a current "
        "roster that covers the month); the next run adds the months."
        if gaps else ""
    )
    team_months = (
        "Team-months whose HR org units have no headcount snapshot in a month other org units have: "
        + "; ".join(str(gap) for gap in team_gaps)
        + ". A team with none of its org units that month has no team-month: its incidents, tickets and leavers "
        "count for no team, and its month before takes its opening headcount alone as its average; a team missing "
        "one of its org units counts the others' people only. Deliver those org units' snapshot dated the month's "
        "first day (hr_headcount.csv rows, or the HR tool's monthly export with them; a roster covers every "
        "month); the next run adds them. If an org unit had nobody that month, or no longer belongs to the team, "
        "correct its hr_org_units entry in the team map."
        if team_gaps else ""
    )
    description = " ".join(part for part in (months, team_months) if part) or (
        f"every closed month from {HISTORY_START} with incidents or tickets has an HR headcount snapshot, and no "
        "team's org unit misses one in a month other org units have")
    return dg.AssetCheckResult(
        passed=not gaps and not team_gaps,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"months_without_headcount": dg.MetadataValue.json([str(gap) for gap in gaps]),
                  "months_without_headcount_count": len(gaps),
                  "team_months_without_headcount": dg.MetadataValue.json([str(gap) for gap in team_gaps]),
                  "team_months_without_headcount_count": len(team_gaps)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "mart_team_month"]),
    additional_deps=[dg.AssetKey(["marts", "fct_incidents"]), dg.AssetKey(["marts", "fct_tickets"]),
                     dg.AssetKey(["staging", "stg_hr__headcount"]), dg.AssetKey(["intermediate", "int_team_owners"])],
    name="closed_months_have_headcount",
    description=f"Warns naming each closed month from {HISTORY_START} (HISTORY_START) that has incidents or "
    "tickets but no HR headcount snapshot (a late monthly file): it has no team-month, so its incidents, tickets and "
    "leavers count for no team. Also names each team-month whose team's org unit has no snapshot in a month other org "
    f"units have while its people are in its snapshots around it (at most {MAX_MONTHS_LEFT_OUT} months left out "
    "between them), or while its team has incidents or tickets (a monthly export that left it out): the team has no "
    "team-month, or counts its other org units' people only. Deliver the month's snapshot, dated its first day.",
)
def closed_months_have_headcount(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        return headcount_gaps_report(conn)
