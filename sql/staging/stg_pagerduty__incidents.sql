-- stg_pagerduty__incidents: one row per PagerDuty incident, as the incident object states it.
-- Grain: incident_id. Timestamps are UTC. Durations come from log entries, not from here.
select
    id as incident_id,
    (payload ->> 'incident_number')::integer as incident_number,
    payload -> 'service' ->> 'id' as service_id,
    timezone('UTC', (payload ->> 'created_at')::timestamptz) as created_at,
    payload ->> 'status' as status,
    payload ->> 'urgency' as urgency
from raw.pagerduty__incidents
