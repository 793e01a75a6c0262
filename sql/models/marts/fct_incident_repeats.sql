{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

-- An incident repeats when, within the KPI rules' repeat window after an incident on the same
-- service was resolved, it was triggered with the same de-duplication key or the same
-- normalised title. It repeats the latest such incident.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

incidents as (
    select * from {{ ref('fct_incidents') }}
),

matches as (
    select
        later.incident_id,
        later.team,
        later.service_id,
        later.period_month,
        later.triggered_at,
        earlier.incident_id as repeat_of_incident_id,
        earlier.resolved_at as repeat_of_resolved_at,
        case
            when later.incident_key = earlier.incident_key and later.title_normalised = earlier.title_normalised
                then 'dedup_key_and_title'
            when later.incident_key = earlier.incident_key then 'dedup_key'
            else 'title'
        end as matched_on,
        epoch(later.triggered_at - earlier.resolved_at) / 86400 as days_after_resolve
    from incidents as later
    cross join rules
    inner join incidents as earlier
        on earlier.service_id = later.service_id
        and earlier.incident_id <> later.incident_id
        and earlier.resolved_at < later.triggered_at
        and later.triggered_at <= earlier.resolved_at + to_days(rules.repeat_window_days)
        and (later.incident_key = earlier.incident_key
             or nullif(later.title_normalised, '') = nullif(earlier.title_normalised, ''))
    qualify row_number() over (
        partition by later.incident_id order by earlier.resolved_at desc, earlier.incident_id
    ) = 1
)

select * from matches
{{ in_partition_window('period_month') }}
