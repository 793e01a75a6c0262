-- fct_incidents: one row per PagerDuty incident with its durations rebuilt from log entries.
-- Grain: incident_id. Per METRICS.md: t_trigger = created_at; t_ack = first acknowledgement
-- by a person; t_resolved = last resolve; reopens = triggers after the first resolve.
-- Open incidents are kept with is_open (censored), auto-resolved and sub-minute ones flagged.
-- Team = owning team of the incident's service; period = month of t_trigger (UTC).
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
)

select
    incidents.incident_id,
    teams.team,
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
left join staging.stg_pagerduty__services as services using (service_id)
left join marts.dim_teams as teams
    on teams.pagerduty_team_id = services.team_id
