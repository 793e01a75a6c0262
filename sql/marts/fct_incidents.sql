-- fct_incidents: one row per PagerDuty incident that counts, with durations rebuilt from log entries.
-- Grain: incident_id. Per METRICS.md: t_trigger = created_at (the first trigger entry); t_onset =
-- earliest of the "impact started" custom field (its latest value) and the first alert's payload
-- timestamp; t_ack = first acknowledgement by a person; t_resolved = last resolve; reopens =
-- triggers after the first resolve. TTD = t_trigger - t_onset, TTA = t_ack - t_trigger,
-- TTR = t_resolved - t_trigger, and TTR from onset where the onset is known.
-- Excluded (no row): incidents merged into another and incidents on test services.
-- Flagged, not dropped: open at the cut-off (is_open: censored, no TTR), auto-resolved, under a minute.
-- Team = the team map's owner of the incident's service when the map claims the service by id,
-- else of the PagerDuty team at trigger time (the trigger log entry's team), else of the
-- incident's team, else of the service's current team (team_source says which); period = month
-- of t_trigger (UTC).
-- Partitioned by month on period_month.
with timelines as (
    select
        incident_id,
        arg_min(team_id, created_at) filter (where entry_type = 'trigger_log_entry') as trigger_team_id,
        min(created_at) filter (where entry_type = 'acknowledge_log_entry' and agent_type = 'user_reference') as acknowledged_at,
        max(created_at) filter (where entry_type = 'resolve_log_entry') as resolved_at,
        min(created_at) filter (where entry_type = 'resolve_log_entry') as first_resolved_at,
        arg_max(agent_type, created_at) filter (where entry_type = 'resolve_log_entry') as resolver_type,
        arg_max(channel_type, created_at) filter (where entry_type = 'resolve_log_entry') as resolve_channel,
        arg_max(impact_started_at, created_at) filter (where impact_started_at is not null) as impact_started_at,
        arg_min(alert_timestamp, created_at) filter (where entry_type = 'trigger_log_entry') as alert_timestamp
    from staging.stg_pagerduty__log_entries
    group by incident_id
),

reopens as (
    select entries.incident_id, count(*) as reopen_count
    from staging.stg_pagerduty__log_entries as entries
    inner join timelines using (incident_id)
    where entries.entry_type = 'trigger_log_entry' and entries.created_at > timelines.first_resolved_at
    group by entries.incident_id
),

known_pagerduty_teams as (
    select team_id, team_name from staging.stg_pagerduty__teams
    union
    select distinct team_id, team_name from staging.stg_pagerduty__log_entries where team_id is not null
),

pagerduty_team_owners as (
    select
        known.team_id,
        coalesce(max(by_id.team), max(by_name.team)) as team
    from known_pagerduty_teams as known
    left join staging.stg_config__team_map as by_id
        on by_id.source = 'pagerduty_team' and by_id.identifier = known.team_id
    left join staging.stg_config__team_map as by_name
        on by_name.source = 'pagerduty_team' and by_name.identifier = known.team_name
    group by known.team_id
),

attributed as (
    select
        incidents.*,
        services.is_test,
        timelines.* exclude (incident_id),
        coalesce(reopens.reopen_count, 0) as reopen_count,
        case
            when by_service.team is not null then 'service'
            when trigger_owner.team is not null then 'trigger_team'
            when incident_owner.team is not null then 'incident_team'
            when current_owner.team is not null then 'service_current_team'
        end as team_source,
        coalesce(by_service.team, trigger_owner.team, incident_owner.team, current_owner.team) as team,
        least(timelines.impact_started_at, timelines.alert_timestamp) as onset_at
    from staging.stg_pagerduty__incidents as incidents
    left join timelines using (incident_id)
    left join reopens using (incident_id)
    left join staging.stg_pagerduty__services as services using (service_id)
    left join staging.stg_config__team_map as by_service
        on by_service.source = 'pagerduty_service' and by_service.identifier = incidents.service_id
    left join pagerduty_team_owners as trigger_owner on trigger_owner.team_id = timelines.trigger_team_id
    left join pagerduty_team_owners as incident_owner on incident_owner.team_id = incidents.team_id
    left join pagerduty_team_owners as current_owner on current_owner.team_id = services.team_id
)

select
    incident_id,
    team,
    team_source,
    service_id,
    date_trunc('month', created_at)::date as period_month,
    created_at as triggered_at,
    onset_at,
    case
        when impact_started_at is not null and alert_timestamp is not null then 'custom_field_and_alert'
        when impact_started_at is not null then 'custom_field'
        when alert_timestamp is not null then 'alert'
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
    urgency
from attributed
where merged_into_incident_id is null and not coalesce(is_test, false)
