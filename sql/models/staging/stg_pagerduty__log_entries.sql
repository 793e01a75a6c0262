{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='log_entry_id',
    rebuild_when_sql_changes=true,
    post_hook=[
        "{{ remove_rows_of_gone_records('pagerduty__log_entries', 'log_entry_id') }}",
        "{{ record_sql_fingerprint() }}",
    ],
) }}

select
    id as log_entry_id,
    incident_id,
    entry_type,
    created_at,
    agent_type,
    agent_id,
    channel_type,
    team_id,
    team_name,
    impact_started_at,
    alert_timestamp,
    loaded_at
from {{ source('raw', 'pagerduty__log_entries') }} as entries
{% if is_incremental() %}
where {{ records_to_derive('entries', 'log_entry_id') }}
{% endif %}
