-- Who raised each Jira issue, as far as the identity map tells: the employee (pseudonym), the
-- team of their HR org unit and their role when the issue was created, and whether the KPI
-- rules call that role junior. Issues whose reporter the map does not know have no row.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

identities as (
    select * from {{ ref('stg_config__identity_map') }}
),

reporters as (
    select
        issues.issue_id,
        issues.created_at,
        coalesce(by_account.employee_id, by_email.employee_id) as employee_id
    from {{ ref('stg_jira__issues') }} as issues
    left join identities as by_account
        on by_account.identity_kind = 'jira_account_id' and by_account.identity = issues.reporter_account_id
    left join identities as by_email
        on by_email.identity_kind = 'email' and by_email.identity = issues.reporter_email
    where coalesce(by_account.employee_id, by_email.employee_id) is not null
),

snapshots as (
    select employee_id, snapshot_date::timestamp as snapshot_at, org_unit, role
    from {{ ref('stg_hr__headcount') }}
),

-- The reporter's latest HR snapshot on or before the issue's creation; one older than 45 days
-- (someone who had left) tells nothing about them then.
placed as (
    select
        reporters.issue_id,
        reporters.employee_id,
        case when snapshots.snapshot_at > reporters.created_at - interval 45 days then snapshots.org_unit end as org_unit,
        case when snapshots.snapshot_at > reporters.created_at - interval 45 days then snapshots.role end as role
    from reporters
    asof left join snapshots
        on snapshots.employee_id = reporters.employee_id and reporters.created_at >= snapshots.snapshot_at
)

select
    placed.issue_id,
    placed.employee_id,
    owners.team as reporter_team,
    placed.role as reporter_role,
    coalesce({{ matches_any_pattern('lower(placed.role)', 'rules.junior_roles') }}, false) as is_junior
from placed
cross join rules
left join {{ ref('int_hr_org_unit_teams') }} as owners
    on owners.org_unit = placed.org_unit
