{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

-- Post-incident review action items, each attributed to a team and judged against the KPI
-- rules' close window.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

items as (
    select * from {{ ref('int_review_action_items') }}
    where created_at is not null
),

-- A review counts for the team of the first incident it reviews that has one.
review_incidents as (
    select
        links.review_id,
        arg_min(incidents.incident_id, (incidents.triggered_at, incidents.incident_id)) as incident_id,
        arg_min(incidents.team, (incidents.triggered_at, incidents.incident_id)) as team
    from {{ ref('int_review_incidents') }} as links
    inner join {{ ref('fct_incidents') }} as incidents using (incident_id)
    where incidents.team is not null
    group by links.review_id
),

-- The data's cut-off: the latest moment the warehouse saw of issues and action items. Only an
-- item created at least the close window before it has a known outcome (due): counting younger
-- ones closed early, but not those still open, would favour the latest months.
cutoff as (
    select max(seen) as observed_until
    from (
        select greatest(created_at, coalesce(updated_at, created_at)) as seen from {{ ref('stg_jira__issues') }}
        union all
        select greatest(created_at, coalesce(updated_at, created_at), coalesce(completed_at, created_at))
        from {{ ref('stg_pagerduty__review_action_items') }}
    )
),

judged as (
    select
        items.action_item_id,
        items.review_id,
        items.source,
        items.found_as,
        review_incidents.incident_id,
        -- A review naming no incident with a team, and its items, follow the team map.
        coalesce(review_incidents.team, reviews.team, items.team) as team,
        case
            when review_incidents.team is not null then 'incident'
            when reviews.team is not null then 'review'
            when items.team is not null then 'action_item'
        end as team_source,
        date_trunc('month', items.created_at)::date as period_month,
        items.created_at,
        items.closed_at,
        -- An item closed before it was created (a Jira import that kept the resolution date but
        -- set the creation date to the import, a clock off) has no time to close and no outcome
        -- to judge (not due); the check on this table names it.
        case when items.closed_at >= items.created_at then epoch(items.closed_at - items.created_at) / 86400 end
            as days_to_close,
        coalesce(items.closed_at >= items.created_at
                 and items.closed_at <= items.created_at + to_days(rules.action_item_close_within_days), false)
            as is_closed_in_time,
        coalesce(items.created_at + to_days(rules.action_item_close_within_days) <= cutoff.observed_until
                 and not coalesce(items.closed_at < items.created_at, false), false)
            as is_due
    from items
    cross join rules
    inner join {{ ref('int_post_incident_reviews') }} as reviews using (review_id)
    left join review_incidents using (review_id)
    cross join cutoff
)

select * from judged
{{ in_partition_window('period_month') }}
