{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

with entries as (
    select * from {{ ref('stg_pagerduty__log_entries') }}
),

-- The first trigger's alert time and the last resolve's agent and channel are those of that
-- entry, null when it has none: arg_min_null/arg_max_null, since arg_min/arg_max skip null
-- values and would take a later trigger's (or an earlier resolve's) instead.
timelines as (
    select
        incident_id,
        min(created_at) filter (where entry_type = 'acknowledge_log_entry' and agent_type = 'user_reference') as acknowledged_at,
        max(created_at) filter (where entry_type = 'resolve_log_entry') as resolved_at,
        max(created_at) filter (where entry_type = 'trigger_log_entry') as last_triggered_at,
        min(created_at) filter (where entry_type = 'resolve_log_entry') as first_resolved_at,
        arg_max_null(agent_type, created_at) filter (where entry_type = 'resolve_log_entry') as resolver_type,
        arg_max_null(channel_type, created_at) filter (where entry_type = 'resolve_log_entry') as resolve_channel,
        arg_max(impact_started_at, created_at) filter (where impact_started_at is not null) as impact_started_at,
        arg_min_null(alert_timestamp, created_at) filter (where entry_type = 'trigger_log_entry') as alert_timestamp
    from entries
    group by incident_id
),

reopens as (
    select entries.incident_id, count(*) as reopen_count
    from entries
    inner join timelines using (incident_id)
    where entries.entry_type = 'trigger_log_entry' and entries.created_at > timelines.first_resolved_at
    group by entries.incident_id
),

attributed as (
    select
        incidents.*,
        -- A service the directory no longer holds (deleted) is tested on the name the
        -- incident's own service reference carries.
        case
            when services.service_id is not null then services.is_test
            else {{ is_test_service('incidents.service_name') }}
        end as is_test,
        timelines.* exclude (incident_id, resolved_at, last_triggered_at),
        -- The last resolve entry; else, for an incident resolved after the night's log-entry sync
        -- and before its incident sync (its entry not stored yet: none stored, or a trigger stored
        -- after the last one, a reopen), the time the incident states.
        case
            when timelines.resolved_at is null or timelines.last_triggered_at > timelines.resolved_at
                then coalesce(incidents.stated_resolved_at, timelines.resolved_at)
            else timelines.resolved_at
        end as resolved_at,
        coalesce(reopens.reopen_count, 0) as reopen_count,
        -- The team (int_pagerduty_incident_teams): the service's owner when the map claims it,
        -- else the first claimed team listed at trigger time, by the incident, by the service.
        incident_teams.team_source,
        incident_teams.team,
        -- An onset precedes detection (TTD >= 0): a time after the incident's creation (a
        -- monitoring tool's clock ahead, a mistyped field) is no onset, whichever says it.
        case when timelines.impact_started_at <= incidents.created_at then timelines.impact_started_at end
            as impact_onset_at,
        case when timelines.alert_timestamp <= incidents.created_at then timelines.alert_timestamp end
            as alert_onset_at
    from {{ ref('stg_pagerduty__incidents') }} as incidents
    left join timelines using (incident_id)
    left join reopens using (incident_id)
    left join {{ ref('stg_pagerduty__services') }} as services using (service_id)
    left join {{ ref('int_pagerduty_incident_teams') }} as incident_teams using (incident_id)
),

-- Times in an order no incident can have (clock skew, log entries out of order): a resolve
-- before the trigger, an acknowledgement before the trigger or after a resolve kept. Such a time
-- is no t_resolved or t_ack: it is left out (null) and the incident named (timeline_conflict,
-- check incidents_in_time_order), since PagerDuty's log cannot be edited.
resolves_in_order as (
    select * replace (case when resolved_at >= created_at then resolved_at end as resolved_at),
        status = 'resolved' and attributed.resolved_at < created_at as is_resolve_out_of_order
    from attributed
),

ordered as (
    select
        * exclude (is_resolve_out_of_order) replace (
            case
                when acknowledged_at >= created_at
                    and not coalesce(status = 'resolved' and acknowledged_at > resolved_at, false)
                    then acknowledged_at
            end as acknowledged_at
        ),
        case
            when is_resolve_out_of_order and acknowledged_at < created_at
                then 'resolved_and_acknowledged_before_trigger'
            when is_resolve_out_of_order then 'resolved_before_trigger'
            when acknowledged_at < created_at then 'acknowledged_before_trigger'
            when status = 'resolved' and acknowledged_at > resolved_at then 'acknowledged_after_resolve'
        end as timeline_conflict
    from resolves_in_order
),

facts as (
    select
        incident_id,
        team,
        team_source,
        service_id,
        date_trunc('month', created_at)::date as period_month,
        created_at as triggered_at,
        least(impact_onset_at, alert_onset_at) as onset_at,  -- read again below (DuckDB's lateral alias)
        case
            when impact_onset_at is not null and alert_onset_at is not null then 'custom_field_and_alert'
            when impact_onset_at is not null then 'custom_field'
            when alert_onset_at is not null then 'alert'
        end as onset_source,
        acknowledged_at,
        case when status = 'resolved' then resolved_at end as resolved_at,
        epoch(created_at - onset_at) as ttd_seconds,
        epoch(acknowledged_at - created_at) as tta_seconds,
        case when status = 'resolved' then epoch(resolved_at - created_at) end as ttr_seconds,
        case when status = 'resolved' then epoch(resolved_at - onset_at) end as ttr_from_onset_seconds,
        status <> 'resolved' as is_open,
        reopen_count,
        coalesce(resolver_type in ('service_reference', 'integration_reference') or resolve_channel = 'timeout', false)
            as is_auto_resolved,
        coalesce(epoch(resolved_at - created_at) < 60, false) as is_under_a_minute,
        urgency,
        incident_key,
        title_normalised,
        timeline_conflict
    from ordered
    where merged_into_incident_id is null and not coalesce(is_test, false)
)

select * from facts
{{ in_partition_window('period_month') }}
