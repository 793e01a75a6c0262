-- stg_pagerduty__incidents: one row per PagerDuty incident, as the incident object states it.
-- Grain: incident_id. Timestamps are UTC. Durations come from log entries, not from here.
-- merged_into_incident_id: set when the incident was resolved by merging it into another.
-- loaded_at: when the sync last wrote the incident's raw record.
-- Incremental on loaded_at, keyed by incident_id.
-- Every field comes from one parse of the payload (json_extract_string with a list of paths).
with fields as (
    select
        id,
        loaded_at,
        json_extract_string(payload, [
            '$.incident_number', '$.service.id', '$.teams[0].id', '$.created_at', '$.updated_at', '$.status',
            '$.urgency', '$.resolve_reason.type', '$.resolve_reason.incident.id'
        ]) as field
    from raw.pagerduty__incidents
)

select
    id as incident_id,
    field[1]::integer as incident_number,
    field[2] as service_id,
    field[3] as team_id,
    timezone('UTC', field[4]::timestamptz) as created_at,
    timezone('UTC', field[5]::timestamptz) as updated_at,
    field[6] as status,
    field[7] as urgency,
    case when field[8] = 'merge_resolve_reason' then field[9] end as merged_into_incident_id,
    loaded_at
from fields
