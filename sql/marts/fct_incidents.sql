-- fct_incidents: one row per PagerDuty incident with its durations rebuilt from log entries.
-- Grain: incident_id. Per METRICS.md: t_trigger = created_at; t_ack = first acknowledgement
-- by a person; t_resolved = last resolve; reopens = triggers after the first resolve.
-- Open incidents are kept with is_open (censored), auto-resolved and sub-minute ones flagged.
-- Team = the team map's owner of the incident's service (by service id), else of the service's
-- PagerDuty team (by id or name); period = month of t_trigger (UTC).
-- Partitioned by month on period_month.
with timelines as (
    select
        incident_id,
        min(created_at) filter (where entry_type = 'acknowledge_log_entry' and agent_type = 'user_reference') as acknowledged_at,
        max(created_at) filter (where entry_type = 'resolve_log_entry') as resolved_at,
        min(created_at) filter (where entry_type = 'resolve_log_entry') as first_resolved_at,
        arg_max(agent_type, created_at) filter (where entry_type = 'resolve_log_entry') as resolver_type,
        arg_max(channel_type, created_at) filter (where entry_type = 'resolve_log_entry') as resolve_channel
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

service_teams as (
    select
        services.service_id,
        coalesce(by_service.team, by_team.team) as team
    from staging.stg_pagerduty__services as services
    left join staging.stg_config__team_map as by_service
        on by_service.source = 'pagerduty_service' and by_service.identifier = services.service_id
    left join staging.stg_pagerduty__teams as pagerduty_teams
        on pagerduty_teams.team_id = services.team_id
    left join staging.stg_config__team_map as by_team
        on by_team.source = 'pagerduty_team'
        and by_team.identifier in (pagerduty_teams.team_id, pagerduty_teams.team_name)
)

select
    incidents.incident_id,
    service_teams.team,
    date_trunc('month', incidents.created_at)::date as period_month,
    incidents.created_at as triggered_at,
    timelines.acknowledged_at,
    case when incidents.status = 'resolved' then timelines.resolved_at end as resolved_at,
    epoch(timelines.acknowledged_at - incidents.created_at) as tta_seconds,
    case when incidents.status = 'resolved' then epoch(timelines.resolved_at - incidents.created_at) end as ttr_seconds,
    incidents.status <> 'resolved' as is_open,
    coalesce(reopens.reopen_count, 0) as reopen_count,
    coalesce(timelines.resolver_type = 'service_reference' or timelines.resolve_channel = 'timeout', false) as is_auto_resolved,
    coalesce(epoch(timelines.resolved_at - incidents.created_at) < 60, false) as is_under_a_minute,
    incidents.urgency
from staging.stg_pagerduty__incidents as incidents
left join timelines using (incident_id)
left join reopens using (incident_id)
left join service_teams using (service_id)
