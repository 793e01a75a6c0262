-- stg_pagerduty__log_entries: one row per incident log entry (trigger, acknowledge, resolve,
-- custom field change, ...). Grain: log_entry_id. Timestamps are UTC.
-- team_id is the team the entry names: for the trigger entry, the team at trigger time.
-- impact_started_at: the "impact started" custom field value a custom field change set;
-- alert_timestamp: the first alert's payload timestamp, which a trigger entry's channel
-- carries (cef_details.creation_time) when an alert raised the incident.
select
    id as log_entry_id,
    payload -> 'incident' ->> 'id' as incident_id,
    payload ->> 'type' as entry_type,
    timezone('UTC', (payload ->> 'created_at')::timestamptz) as created_at,
    payload -> 'agent' ->> 'type' as agent_type,
    payload -> 'agent' ->> 'id' as agent_id,
    payload -> 'channel' ->> 'type' as channel_type,
    payload -> 'teams' -> 0 ->> 'id' as team_id,
    payload -> 'teams' -> 0 ->> 'summary' as team_name,
    timezone('UTC', try_cast(list_transform(
        list_filter(
            cast(coalesce(payload -> 'channel' -> 'changeset' -> 'customer_fields', '[]') as json[]),
            lambda field: field ->> 'name' = 'impact_started'
        ),
        lambda field: coalesce(field -> 'value' ->> 0, field ->> 'value')
    )[1] as timestamptz)) as impact_started_at,
    timezone('UTC', try_cast(payload -> 'channel' -> 'cef_details' ->> 'creation_time' as timestamptz)) as alert_timestamp
from raw.pagerduty__log_entries
