with issues as (
    select * from {{ ref('stg_jira__issues') }}
),

owners as (
    select * from {{ ref('int_team_owners') }}
),

component_claims as (
    select
        components.issue_id,
        arg_min(owners.team, components.position) as team
    from (
        select issue_id, project_key, unnest(components) as component, generate_subscripts(components, 1) as position
        from issues
    ) as components
    inner join owners
        on owners.source = 'jira_component' and owners.identifier = components.project_key || '/' || components.component
    group by components.issue_id
),

matches as (
    select
        issues.issue_id,
        min(rules.rule_order) as matched_rule,
        arg_min(rules.ticket_class, rules.rule_order) as ticket_class
    from issues
    inner join {{ source('raw', 'config__ticket_classification') }} as rules
        on (len(rules.issue_types) = 0 or list_contains(rules.issue_types, lower(issues.issue_type)))
        and (len(rules.labels) = 0 or list_has_any(rules.labels, list_transform(issues.labels, lambda label: lower(label))))
        and (len(rules.projects) = 0 or list_contains(rules.projects, lower(issues.project_key)))
    group by issues.issue_id
)

select
    issues.issue_id,
    issues.issue_key,
    issues.project_key,
    issues.components,
    coalesce(component_claims.team, by_project.team) as team,
    case
        when component_claims.team is not null then 'component'
        when by_project.team is not null then 'project'
    end as team_source,
    date_trunc('month', issues.created_at)::date as period_month,
    issues.created_at,
    issues.resolved_at,
    issues.issue_type,
    coalesce(matches.ticket_class, 'unclassified') as ticket_class,
    matches.matched_rule
from issues
left join component_claims using (issue_id)
left join matches using (issue_id)
left join owners as by_project
    on by_project.source = 'jira_project' and by_project.identifier = issues.project_key
