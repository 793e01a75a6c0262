-- The team each PagerDuty incident counts for (docs/metrics.md, "Incidents"): the owner of its
-- service when the team map claims the service by id; else of the first team the map claims
-- among those its first trigger log entry lists (the teams at trigger time), else among those
-- the incident lists, else among those its service lists now. PagerDuty lists several teams
-- when an escalation policy is shared (e.g. a shared on-call team beside the owning team), in
-- no documented order: a listed team no team claims is passed over, as int_jira_issue_teams
-- passes over unclaimed components. fct_incidents and the team-map check read it.
with incidents as (
    select incident_id, service_id, team_ids from {{ ref('stg_pagerduty__incidents') }}
),

-- The first trigger's teams (empty when it lists none: no later trigger's teams instead).
triggers as (
    select incident_id, arg_min_null(team_ids, created_at) as team_ids
    from {{ ref('stg_pagerduty__log_entries') }}
    where entry_type = 'trigger_log_entry'
    group by incident_id
),

services as (
    select service_id, team_ids from {{ ref('stg_pagerduty__services') }}
),

-- Every team each source lists, with the source's precedence and the team's position in its list.
listed as (
    select incident_id, 1 as precedence, 'trigger_team' as source,
        unnest(team_ids) as team_id, generate_subscripts(team_ids, 1) as position
    from triggers
    union all
    select incident_id, 2, 'incident_team', unnest(team_ids), generate_subscripts(team_ids, 1)
    from incidents
    union all
    select incidents.incident_id, 3, 'service_current_team',
        unnest(services.team_ids), generate_subscripts(services.team_ids, 1)
    from incidents
    inner join services using (service_id)
),

-- Per source, the owner of the first claimed team listed, and how many teams of the map claim
-- one of its listed teams (above 1: the teams listed belong to several teams, the first won).
source_claims as (
    select
        listed.incident_id,
        listed.precedence,
        any_value(listed.source) as source,
        arg_min(owners.team, listed.position) as team,
        count(distinct owners.team) as claiming_teams
    from listed
    inner join {{ ref('int_pagerduty_team_owners') }} as owners
        on owners.team_id = listed.team_id and owners.team is not null
    group by listed.incident_id, listed.precedence
),

decided as (
    select
        incident_id,
        arg_min(team, precedence) as team,
        arg_min(source, precedence) as team_source,
        arg_min(claiming_teams, precedence) as claiming_teams
    from source_claims
    group by incident_id
),

-- The listed teams the map does not claim, what the mapping check reports (claimed ones are
-- left out here: at 100x, every incident's list of every team costs seconds for nothing).
unclaimed_listed as (
    select listed.incident_id, listed.precedence, listed.team_id
    from listed
    inner join {{ ref('int_pagerduty_team_owners') }} as owners
        on owners.team_id = listed.team_id and owners.team is null
),

every_unclaimed as (
    select incident_id, list_sort(list(distinct team_id)) as unclaimed_team_ids
    from unclaimed_listed
    group by incident_id
),

-- The unclaimed teams a list names beside another team the map claims: a shared team (e.g. an
-- on-call team beside the owner's), which the mapping check does not ask to map.
beside_claimed as (
    select unclaimed.incident_id, list_sort(list(distinct unclaimed.team_id)) as shared_team_ids
    from unclaimed_listed as unclaimed
    inner join listed as other
        on other.incident_id = unclaimed.incident_id and other.precedence = unclaimed.precedence
        and other.team_id <> unclaimed.team_id
    inner join {{ ref('int_pagerduty_team_owners') }} as owners
        on owners.team_id = other.team_id and owners.team is not null
    group by unclaimed.incident_id
)

select
    incidents.incident_id,
    coalesce(by_service.team, decided.team) as team,
    case when by_service.team is not null then 'service' else decided.team_source end as team_source,
    case
        when by_service.team is not null then 1
        else coalesce(decided.claiming_teams, 0)
    end as claiming_teams,
    coalesce(every_unclaimed.unclaimed_team_ids, []::varchar[]) as unclaimed_team_ids,
    coalesce(beside_claimed.shared_team_ids, []::varchar[]) as shared_team_ids
from incidents
left join decided using (incident_id)
left join every_unclaimed using (incident_id)
left join beside_claimed using (incident_id)
left join {{ ref('int_team_owners') }} as by_service
    on by_service.source = 'pagerduty_service' and by_service.identifier = incidents.service_id
