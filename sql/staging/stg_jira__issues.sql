-- stg_jira__issues: one row per Jira issue, classified as proactive, reactive or unclassified.
-- Grain: issue_id. Timestamps are UTC.
-- Proactive: raised before harm (risk, near miss, improvement, security finding, tech debt,
-- or a proactive label). Reactive: raised after harm (incident, escalation, problem).
-- Anything else stays unclassified and is counted as such, never dropped.
with issues as (
    select
        id as issue_id,
        payload ->> 'key' as issue_key,
        payload -> 'fields' -> 'project' ->> 'key' as project_key,
        payload -> 'fields' -> 'issuetype' ->> 'name' as issue_type,
        cast(payload -> 'fields' -> 'labels' as varchar[]) as labels,
        timezone('UTC', strptime(payload -> 'fields' ->> 'created', '%Y-%m-%dT%H:%M:%S.%g%z')) as created_at,
        timezone('UTC', strptime(payload -> 'fields' ->> 'updated', '%Y-%m-%dT%H:%M:%S.%g%z')) as updated_at,
        timezone('UTC', strptime(payload -> 'fields' ->> 'resolutiondate', '%Y-%m-%dT%H:%M:%S.%g%z')) as resolved_at,
        payload -> 'fields' -> 'status' ->> 'name' as status
    from raw.jira__issues
)

select
    *,
    case
        when lower(issue_type) in ('risk', 'near miss', 'improvement', 'security finding', 'tech debt')
            or list_has_any(labels, ['near-miss', 'proactive', 'raised-concern'])
            then 'proactive'
        when lower(issue_type) in ('incident', 'escalation', 'problem') then 'reactive'
        else 'unclassified'
    end as ticket_class
from issues
