with issues as (
    select * from {{ ref('stg_jira__issues') }}
),

matches as (
    select
        issues.issue_id,
        min(rules.rule_order) as matched_rule,
        arg_min(rules.ticket_class, rules.rule_order) as ticket_class
    from issues
    inner join {{ source('raw', 'config__ticket_classification') }} as rules
        on {{ jira_classification_rule_selects('rules', 'issues') }}
    group by issues.issue_id
)

select
    issues.issue_id,
    issues.issue_key,
    issues.project_key,
    issues.components,
    teams.team,
    teams.team_source,
    date_trunc('month', issues.created_at)::date as period_month,
    issues.created_at,
    issues.resolved_at,
    issues.issue_type,
    issues.issue_type_id,
    coalesce(matches.ticket_class, 'unclassified') as ticket_class,
    matches.matched_rule
from issues
left join {{ ref('int_jira_issue_teams') }} as teams using (issue_id)
left join matches using (issue_id)
