-- stg_pagerduty__log_entries: one row per incident log entry (trigger, acknowledge, resolve, ...).
-- Grain: log_entry_id. Timestamps are UTC.
select
    id as log_entry_id,
    payload -> 'incident' ->> 'id' as incident_id,
    payload ->> 'type' as entry_type,
    timezone('UTC', (payload ->> 'created_at')::timestamptz) as created_at,
    payload -> 'agent' ->> 'type' as agent_type,
    payload -> 'agent' ->> 'id' as agent_id,
    payload -> 'channel' ->> 'type' as channel_type
from raw.pagerduty__log_entries
