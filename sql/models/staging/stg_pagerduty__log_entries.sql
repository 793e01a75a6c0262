{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='log_entry_id',
    rebuild_when_sql_changes=true,
    post_hook=[
        "{{ remove_rows_of_gone_records('pagerduty__log_entries', 'log_entry_id') }}",
        "{{ record_sql_fingerprint() }}",
    ],
) }}

select
    id as log_entry_id,
    incident_id,
    entry_type,
    created_at,
    -- PagerDuty's AgentReference types; an integration's own type (e.g.
    -- generic_events_api_inbound_integration_reference) reads as integration_reference, and an
    -- agent without a type (old accounts' entries) is typed by its API (or web) link.
    case
        when agent_type like '%integration_reference' then 'integration_reference'
        when agent_type is not null then agent_type
        when regexp_matches(coalesce(agent_self, agent_html_url), '/integrations/[^/]+$') then 'integration_reference'
        when regexp_matches(coalesce(agent_self, agent_html_url), '/users/[^/]+$') then 'user_reference'
        when regexp_matches(coalesce(agent_self, agent_html_url), '/(services|service-directory)/[^/]+$')
            then 'service_reference'
    end as agent_type,
    agent_id,
    channel_type,
    team_ids,
    team_names,
    impact_started_at,
    alert_timestamp,
    loaded_at
from {{ source('raw', 'pagerduty__log_entries') }} as entries
{% if is_incremental() %}
where {{ records_to_derive('entries', 'log_entry_id') }}
{% endif %}
