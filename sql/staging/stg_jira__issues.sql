-- stg_jira__issues: one row per Jira issue, classified as proactive, reactive or unclassified.
-- Grain: issue_id. Timestamps are UTC. components lists the issue's component names.
-- The class comes from the user's rules file (raw.config__ticket_classification, default
-- config/ticket_classification.yml): the first rule, in file order, whose every condition
-- matches (issue type, any label, project; case-insensitive) decides. Issues no rule matches
-- are unclassified and counted as such, never dropped; matched_rule says which rule decided.
-- Every field comes from one parse of the payload (json_extract with a list of paths).
with fields as (
    select
        id,
        json_extract(payload, [
            '$.key', '$.fields.project.key', '$.fields.issuetype.name', '$.fields.labels', '$.fields.components',
            '$.fields.created', '$.fields.updated', '$.fields.resolutiondate', '$.fields.status.name'
        ]) as field
    from raw.jira__issues
),

issues as (
    select
        id as issue_id,
        field[1] ->> '$' as issue_key,
        field[2] ->> '$' as project_key,
        field[3] ->> '$' as issue_type,
        cast(field[4] as varchar[]) as labels,
        list_transform(
            cast(coalesce(field[5], '[]') as json[]), lambda component: component ->> 'name'
        ) as components,
        timezone('UTC', strptime(field[6] ->> '$', '%Y-%m-%dT%H:%M:%S.%g%z')) as created_at,
        timezone('UTC', strptime(field[7] ->> '$', '%Y-%m-%dT%H:%M:%S.%g%z')) as updated_at,
        timezone('UTC', strptime(field[8] ->> '$', '%Y-%m-%dT%H:%M:%S.%g%z')) as resolved_at,
        field[9] ->> '$' as status
    from fields
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
