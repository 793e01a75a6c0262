-- stg_pagerduty__incidents: one row per PagerDuty incident, as the incident object states it.
-- Grain: incident_id. Timestamps are UTC. Durations come from log entries, not from here.
-- merged_into_incident_id: set when the incident was resolved by merging it into another.
select
    id as incident_id,
    (payload ->> 'incident_number')::integer as incident_number,
    payload -> 'service' ->> 'id' as service_id,
    payload -> 'teams' -> 0 ->> 'id' as team_id,
    timezone('UTC', (payload ->> 'created_at')::timestamptz) as created_at,
    timezone('UTC', (payload ->> 'updated_at')::timestamptz) as updated_at,
    payload ->> 'status' as status,
    payload ->> 'urgency' as urgency,
    case when payload -> 'resolve_reason' ->> 'type' = 'merge_resolve_reason'
        then payload -> 'resolve_reason' -> 'incident' ->> 'id' end as merged_into_incident_id
from raw.pagerduty__incidents
