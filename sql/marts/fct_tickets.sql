-- fct_tickets: one row per Jira issue with its class and its team.
-- Grain: issue_id. Team = the team map's owner of the issue's first component the map claims
-- (jira_components, PROJECT/Component: for projects several teams share), else of its project
-- (jira_projects); team_source says which, and a null team (an unmapped project or component)
-- is kept here and reported by the team map's asset check. Period = month of creation (UTC).
-- The class comes from the user's rules file (raw.config__ticket_classification, default
-- config/ticket_classification.yml): the first rule, in file order, whose every condition
-- matches (issue type, any label, project; case-insensitive) decides. Issues no rule matches
-- are unclassified and counted as such, never dropped; matched_rule says which rule decided.
with component_claims as (
    select
        issues.issue_id,
        arg_min(map.team, issues.position) as team
    from (
        select issue_id, project_key, unnest(components) as component, generate_subscripts(components, 1) as position
        from staging.stg_jira__issues
    ) as issues
    inner join staging.stg_config__team_map as map
        on map.source = 'jira_component' and map.identifier = issues.project_key || '/' || issues.component
    group by issues.issue_id
),

matches as (
    select
        issues.issue_id,
        min(rules.rule_order) as matched_rule,
        arg_min(rules.ticket_class, rules.rule_order) as ticket_class
    from staging.stg_jira__issues as issues
    inner join raw.config__ticket_classification as rules
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
from staging.stg_jira__issues as issues
left join component_claims using (issue_id)
left join matches using (issue_id)
left join staging.stg_config__team_map as by_project
    on by_project.source = 'jira_project' and by_project.identifier = issues.project_key
