{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='action_item_id',
    rebuild_when_sql_changes=true,
    post_hook=[
        "{{ remove_rows_of_gone_records('pagerduty__review_action_items', 'action_item_id') }}",
        "{{ record_sql_fingerprint() }}",
    ],
) }}

select
    id as action_item_id,
    incident_id,
    status,
    created_at,
    updated_at,
    -- A completed item without its completion time counts as closed when last updated.
    case when status = 'completed' then coalesce(completed_at, updated_at) end as completed_at,
    loaded_at
from {{ source('raw', 'pagerduty__review_action_items') }} as items
{% if is_incremental() %}
where {{ records_to_derive('items', 'action_item_id') }}
{% endif %}
