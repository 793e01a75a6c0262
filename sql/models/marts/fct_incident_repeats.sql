{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

-- An incident repeats when, within the KPI rules' repeat window after an incident on the same
-- service was resolved, it was triggered with the same de-duplication key or the same
-- normalised title. It repeats the latest such incident (of those resolved at the same instant,
-- the first by id).
--
-- The latest earlier incident is found by an as-of join per kind of match, not by pairing every
-- two incidents of a service: a service whose alerts share a title would pair millions. The
-- latest one resolved before the trigger is the only one that can be within the window.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

incidents as (
    select * from {{ ref('fct_incidents') }}
),

later as (
    select
        incident_id,
        team,
        service_id,
        period_month,
        triggered_at,
        incident_key,
        title_normalised
    from incidents
    {{ in_partition_window('period_month') }}
),

-- The incidents a later one can repeat. One resolved before its own trigger (a broken timeline)
-- is left out: an as-of join cannot say "not the incident itself", and only such an incident
-- could match itself.
resolved as (
    select
        incident_id,
        service_id,
        resolved_at,
        incident_key,
        title_normalised
    from incidents
    where resolved_at >= triggered_at
),

-- One incident per service, key and resolve instant: the first by id.
resolved_by_key as (
    select * from resolved
    where incident_key is not null
    qualify row_number() over (partition by service_id, incident_key, resolved_at order by incident_id) = 1
),

resolved_by_title as (
    select * from resolved
    where nullif(title_normalised, '') is not null
    qualify row_number() over (partition by service_id, title_normalised, resolved_at order by incident_id) = 1
),

-- Each incident beside the latest resolved before its trigger with its key and with its title.
latest as (
    select
        later.*,
        by_key.incident_id as by_key_incident_id,
        by_key.resolved_at as by_key_resolved_at,
        by_key.title_normalised as by_key_title_normalised,
        by_title.incident_id as by_title_incident_id,
        by_title.resolved_at as by_title_resolved_at,
        by_title.incident_key as by_title_incident_key,
        -- The later resolve is the one repeated; at the same instant, the first by id.
        by_key.resolved_at is not null and (
            by_title.resolved_at is null
            or by_key.resolved_at > by_title.resolved_at
            or (by_key.resolved_at = by_title.resolved_at and by_key.incident_id <= by_title.incident_id)
        ) as repeats_by_key
    from later
    asof left join resolved_by_key as by_key
        on by_key.service_id = later.service_id
        and by_key.incident_key = later.incident_key
        and later.triggered_at > by_key.resolved_at
    asof left join resolved_by_title as by_title
        on by_title.service_id = later.service_id
        and by_title.title_normalised = later.title_normalised
        and later.triggered_at > by_title.resolved_at
),

repeated as (
    select
        incident_id,
        team,
        service_id,
        period_month,
        triggered_at,
        if(repeats_by_key, by_key_incident_id, by_title_incident_id) as repeat_of_incident_id,
        if(repeats_by_key, by_key_resolved_at, by_title_resolved_at) as repeat_of_resolved_at,
        repeats_by_key or coalesce(by_title_incident_key = incident_key, false) as same_key,
        not repeats_by_key or coalesce(nullif(by_key_title_normalised, '') = title_normalised, false) as same_title
    from latest
),

matches as (
    select
        repeated.incident_id,
        repeated.team,
        repeated.service_id,
        repeated.period_month,
        repeated.triggered_at,
        repeated.repeat_of_incident_id,
        repeated.repeat_of_resolved_at,
        case
            when repeated.same_key and repeated.same_title then 'dedup_key_and_title'
            when repeated.same_key then 'dedup_key'
            else 'title'
        end as matched_on,
        epoch(repeated.triggered_at - repeated.repeat_of_resolved_at) / 86400 as days_after_resolve
    from repeated
    cross join rules
    where repeated.triggered_at <= repeated.repeat_of_resolved_at + to_days(rules.repeat_window_days)
)

select * from matches
