{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

-- The counted incidents that were reviewed, with their first review and when the first was done.
with reviews as (
    select * from {{ ref('int_post_incident_reviews') }}
),

incidents as (
    select * from {{ ref('fct_incidents') }}
),

reviewed as (
    select
        incidents.incident_id,
        incidents.team,
        incidents.period_month,
        incidents.urgency,
        incidents.resolved_at as incident_resolved_at,
        count(*) as reviews,
        arg_min(reviews.review_id, (reviews.created_at, reviews.review_id)) as first_review_id,
        arg_min(reviews.source, (reviews.created_at, reviews.review_id)) as first_review_source,
        arg_min(links.linked_by, (reviews.created_at, reviews.review_id)) as first_review_linked_by,
        min(reviews.created_at) as review_created_at,
        min(reviews.done_at) as review_done_at
    from {{ ref('int_review_incidents') }} as links
    inner join reviews using (review_id)
    inner join incidents using (incident_id)
    group by all
)

select
    *,
    epoch(review_done_at - incident_resolved_at) / 86400 as days_to_review_done
from reviewed
{{ in_partition_window('period_month') }}
