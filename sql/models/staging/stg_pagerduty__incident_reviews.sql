{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='review_id',
    rebuild_when_sql_changes=true,
    post_hook=[
        "{{ remove_rows_of_gone_records('pagerduty__incident_reviews', 'review_id') }}",
        "{{ record_sql_fingerprint() }}",
    ],
) }}

select
    id as review_id,
    incident_id,
    status,
    created_at,
    updated_at,
    -- A completed review without its completion time counts as done when last updated.
    case when status = 'completed' then coalesce(completed_at, updated_at) end as completed_at,
    action_item_count,
    completed_action_item_count,
    loaded_at
from {{ source('raw', 'pagerduty__incident_reviews') }} as reviews
{% if is_incremental() %}
where {{ records_to_derive('reviews', 'review_id') }}
{% endif %}
