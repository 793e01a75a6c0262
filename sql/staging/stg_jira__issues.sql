-- stg_jira__issues: one row per Jira issue. Grain: issue_id. Timestamps are UTC.
-- labels and components list the issue's label and component names.
-- loaded_at: when the sync last wrote the issue's raw record.
-- Incremental on loaded_at, keyed by issue_id.
-- Every field comes from one parse of the payload (json_extract_string with a list of paths).
with fields as (
    select
        id,
        loaded_at,
        json_extract_string(payload, [
            '$.key', '$.fields.project.key', '$.fields.issuetype.name', '$.fields.labels', '$.fields.components',
            '$.fields.created', '$.fields.updated', '$.fields.resolutiondate', '$.fields.status.name'
        ]) as field
    from raw.jira__issues
)

select
    id as issue_id,
    field[1] as issue_key,
    field[2] as project_key,
    field[3] as issue_type,
    cast(field[4]::json as varchar[]) as labels,
    list_transform(
        cast(coalesce(field[5], '[]')::json as json[]), lambda component: component ->> 'name'
    ) as components,
    timezone('UTC', strptime(field[6], '%Y-%m-%dT%H:%M:%S.%g%z')) as created_at,
    timezone('UTC', strptime(field[7], '%Y-%m-%dT%H:%M:%S.%g%z')) as updated_at,
    timezone('UTC', strptime(field[8], '%Y-%m-%dT%H:%M:%S.%g%z')) as resolved_at,
    field[9] as status,
    loaded_at
from fields
