-- stg_jira__issues: one row per Jira issue, classified as proactive, reactive or unclassified.
-- Grain: issue_id. Timestamps are UTC. components lists the issue's component names.
-- The class comes from the user's rules file (raw.config__ticket_classification, default
-- config/ticket_classification.yml): the first rule, in file order, whose every condition
-- matches (issue type, any label, project; case-insensitive) decides. Issues no rule matches
-- are unclassified and counted as such, never dropped; matched_rule says which rule decided.
with issues as (
    select
        id as issue_id,
        payload ->> 'key' as issue_key,
        payload -> 'fields' -> 'project' ->> 'key' as project_key,
        payload -> 'fields' -> 'issuetype' ->> 'name' as issue_type,
        cast(payload -> 'fields' -> 'labels' as varchar[]) as labels,
        list_transform(
            cast(coalesce(payload -> 'fields' -> 'components', '[]') as json[]), lambda component: component ->> 'name'
        ) as components,
        timezone('UTC', strptime(payload -> 'fields' ->> 'created', '%Y-%m-%dT%H:%M:%S.%g%z')) as created_at,
        timezone('UTC', strptime(payload -> 'fields' ->> 'updated', '%Y-%m-%dT%H:%M:%S.%g%z')) as updated_at,
        timezone('UTC', strptime(payload -> 'fields' ->> 'resolutiondate', '%Y-%m-%dT%H:%M:%S.%g%z')) as resolved_at,
        payload -> 'fields' -> 'status' ->> 'name' as status
    from raw.jira__issues
),

matches as (
    select
        issues.issue_id,
        min(rules.rule_order) as matched_rule,
        arg_min(rules.ticket_class, rules.rule_order) as ticket_class
    from issues
    inner join raw.config__ticket_classification as rules
        on (len(rules.issue_types) = 0 or list_contains(rules.issue_types, lower(issues.issue_type)))
        and (len(rules.labels) = 0 or list_has_any(rules.labels, list_transform(issues.labels, lambda label: lower(label))))
        and (len(rules.projects) = 0 or list_contains(rules.projects, lower(issues.project_key)))
    group by issues.issue_id
)

select
    issues.*,
    coalesce(matches.ticket_class, 'unclassified') as ticket_class,
    matches.matched_rule
from issues
left join matches using (issue_id)
