-- Every post-incident review: the Jira issues the KPI rules call reviews (issue type or label,
-- within the rules' projects) and PagerDuty's own Incident Reviews.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

issues as (
    select * from {{ ref('stg_jira__issues') }}
),

jira_reviews as (
    select
        'jira:' || issues.issue_id as review_id,
        'jira' as source,
        issues.issue_id as jira_issue_id,
        issues.issue_key as review_key,
        null::varchar as pagerduty_incident_id,
        issues.created_at,
        {{ jira_issue_done_at('issues') }} as done_at,
        teams.team,
        teams.team_source
    from issues
    cross join rules
    left join {{ ref('int_jira_issue_teams') }} as teams using (issue_id)
    where {{ jira_review_rule_selects('rules', 'issues') }}
),

pagerduty_reviews as (
    select
        'pagerduty:' || review_id as review_id,
        'pagerduty' as source,
        null::varchar as jira_issue_id,
        review_id as review_key,
        incident_id as pagerduty_incident_id,
        created_at,
        completed_at as done_at,
        -- A PagerDuty review counts for its incident's team (fct_incident_reviews).
        null::varchar as team,
        null::varchar as team_source
    from {{ ref('stg_pagerduty__incident_reviews') }}
)

select * from jira_reviews
union all
select * from pagerduty_reviews
