-- Each team's headcount per calendar month: distinct employees of its HR org units in the
-- month's opening snapshot. Read by marts.mart_team_month (its team-months and attrition
-- denominators), marts.fct_team_month_survey_scores (its team-months) and the survey asset's
-- count-bounds rule (the most respondents a team can have in a wave).
with org_units as (
    select identifier as org_unit, team from {{ ref('int_team_owners') }} where source = 'hr_org_unit'
),

rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
)

select
    org_units.team,
    date_trunc('month', snapshot_date)::date as period_month,
    count(distinct employee_id) as headcount,
    count(distinct employee_id) filter (where is_critical_role) as critical_headcount,
    count(distinct employee_id) filter (
        where {{ matches_any_pattern('lower(role)', 'rules.junior_roles') }}) as junior_headcount
from {{ ref('stg_hr__headcount') }}
inner join org_units using (org_unit)
cross join rules
group by all
