{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='incident_id',
    rebuild_when_sql_changes=true,
    post_hook=[
        "{{ remove_rows_of_gone_records('pagerduty__incidents', 'incident_id') }}",
        "{{ record_sql_fingerprint() }}",
    ],
) }}

select
    id as incident_id,
    incident_number,
    service_id,
    service_name,
    team_ids,
    created_at,
    updated_at,
    status,
    resolved_at as stated_resolved_at,
    urgency,
    case when resolve_reason_type = 'merge_resolve_reason' then resolve_reason_incident_id end as merged_into_incident_id,
    incident_key,
    title,
    {{ normalised_title('title') }} as title_normalised,
    loaded_at
from {{ source('raw', 'pagerduty__incidents') }} as incidents
{% if is_incremental() %}
where {{ records_to_derive('incidents', 'incident_id') }}
{% endif %}
