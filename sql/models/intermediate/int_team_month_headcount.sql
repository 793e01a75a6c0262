-- Each team's headcount per calendar month: distinct employees of its HR org units in the
-- month's opening snapshot. Read by marts.mart_team_month (its team-months and attrition
-- denominators), marts.fct_team_month_survey_scores (its team-months) and the survey asset's
-- count-bounds rule (the most respondents a team can have in a wave).
with org_units as (
    select * from {{ ref('int_hr_org_unit_teams') }}
),

rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

team_snapshots as (
    select
        org_units.team,
        org_unit,
        date_trunc('month', snapshot_date)::date as period_month,
        snapshot_date,
        employee_id,
        role,
        is_critical_role
    from {{ ref('stg_hr__headcount') }}
    inner join org_units using (org_unit)
),

-- One snapshot per org unit and month, its earliest: a roster's derived snapshots are all on the
-- 1st, a snapshot file may hold another date too (a month-end "as of" export beside the 1st's,
-- whose union would count people never employed at once). A month whose only snapshot is later
-- than the 1st is read from it; the HR loader's notes name such dates (hr._snapshot_notes). Per
-- org unit, not per team: a team's org units may be exported on different days, and each counts.
opening as (
    select * from team_snapshots
    qualify snapshot_date = min(snapshot_date) over (partition by org_unit, period_month)
)

select
    opening.team,
    opening.period_month,
    count(distinct employee_id) as headcount,
    count(distinct employee_id) filter (where is_critical_role) as critical_headcount,
    count(distinct employee_id) filter (
        where {{ matches_any_pattern('lower(role)', 'rules.junior_roles') }}) as junior_headcount
from opening
cross join rules
group by all
