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
    labels,
    components,
    created_at,
    updated_at,
    resolved_at,
    status,
    loaded_at
from {{ source('raw', 'jira__issues') }} as issues
{% if is_incremental() %}
where {{ records_to_derive('issues', 'issue_id') }}
{% endif %}
