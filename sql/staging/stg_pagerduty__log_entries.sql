-- stg_pagerduty__log_entries: one row per incident log entry (trigger, acknowledge, resolve,
-- custom field change, ...). Grain: log_entry_id. Timestamps are UTC.
-- team_id is the team the entry names: for the trigger entry, the team at trigger time.
-- impact_started_at: the "impact started" custom field value a custom field change set;
-- alert_timestamp: the first alert's payload timestamp, which a trigger entry's channel
-- carries (cef_details.creation_time) when an alert raised the incident.
-- agent_type: PagerDuty's AgentReference types, user_reference, service_reference or
-- integration_reference (an integration's own type, e.g. generic_events_api_inbound_integration_reference,
-- reads as integration_reference); an agent without a type (old accounts' entries) is typed by its
-- API (or web) link: .../integrations/{id}, /users/{id}, /services/{id}.
-- loaded_at: when the sync last wrote the entry's raw record.
-- Incremental on loaded_at, keyed by log_entry_id.
-- Every field comes from one parse of the payload (json_extract_string with a list of
-- paths); a `payload -> .. ->> ..` per field would parse the document once per field.
with fields as (
    select
        id,
        loaded_at,
        json_extract_string(payload, [
            '$.incident.id', '$.type', '$.created_at', '$.agent.type', '$.agent.id', '$.channel.type',
            '$.teams[0].id', '$.teams[0].summary', '$.channel.changeset.customer_fields',
            '$.channel.cef_details.creation_time', '$.agent.self', '$.agent.html_url'
        ]) as field
    from raw.pagerduty__log_entries
)

select
    id as log_entry_id,
    field[1] as incident_id,
    field[2] as entry_type,
    timezone('UTC', field[3]::timestamptz) as created_at,
    case
        when field[4] like '%integration_reference' then 'integration_reference'
        when field[4] is not null then field[4]
        when regexp_matches(coalesce(field[11], field[12]), '/integrations/[^/]+$') then 'integration_reference'
        when regexp_matches(coalesce(field[11], field[12]), '/users/[^/]+$') then 'user_reference'
        when regexp_matches(coalesce(field[11], field[12]), '/(services|service-directory)/[^/]+$') then 'service_reference'
    end as agent_type,
    field[5] as agent_id,
    field[6] as channel_type,
    field[7] as team_id,
    field[8] as team_name,
    timezone('UTC', try_cast(list_transform(
        list_filter(
            cast(field[9]::json as json[]),
            lambda custom_field: custom_field ->> 'name' = 'impact_started'
        ),
        lambda custom_field: coalesce(custom_field -> 'value' ->> 0, custom_field ->> 'value')
    )[1] as timestamptz)) as impact_started_at,
    timezone('UTC', try_cast(field[10] as timestamptz)) as alert_timestamp,
    loaded_at
from fields
