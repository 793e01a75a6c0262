{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='issue_id',
    rebuild_when_sql_changes=true,
    post_hook=[
        "{{ remove_rows_of_gone_records('jira__issues', 'issue_id') }}",
        "{{ record_sql_fingerprint() }}",
    ],
) }}

select
    id as issue_id,
    issue_key,
    project_key,
    issue_type,
    issue_type_id,
    labels,
    components,
    created_at,
    updated_at,
    resolved_at,
    status,
    status_category,
    summary,
    issue_links,
    subtask_ids,
    parent_id,
    is_subtask,
    -- Who raised the issue: the reporter, else the creator (pseudonyms, never identities).
    coalesce(reporter_account_id, creator_account_id) as reporter_account_id,
    case when reporter_account_id is not null then reporter_email else creator_email end as reporter_email,
    custom_fields,
    description,
    loaded_at
from {{ source('raw', 'jira__issues') }} as issues
{% if is_incremental() %}
where {{ records_to_derive('issues', 'issue_id') }}
{% endif %}
