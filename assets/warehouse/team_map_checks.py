"""Asset checks that the team map covers every PagerDuty and Jira entity seen in the data.

An incident or ticket whose service, PagerDuty team, Atlassian team, project or component no
team claims keeps its row (team null) but counts for no team, so each check lists the unclaimed
identifiers with the number of records they carry, for the user to add to team_map.yml.
A PagerDuty team listed only beside a claimed team (a shared on-call team, no survey team:
every counted incident naming it names a claimed team in the same list) is named as left
unclaimed, with nothing to do; one listed alone on incidents that count only by their service's
claim is named as one to map (its next service would count for no team); incidents whose listed teams several teams claim (they went
to the first claimed) are named by service, which the map can claim by id to choose. An
Atlassian team (the Jira Team field) no team claims is named even when its tickets counted
for their component's or project's team: the field says who owns them.
Both checks also name a PagerDuty or Atlassian team whose names several teams of the map claim
(a renamed team whose old name another team now has): it counts for the team claiming its
latest name, and only a claim by id can say otherwise.
Unknown survey groups and HR org units are reported by the survey/HR quarantine.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.warehouse.pool import WAREHOUSE_POOL

# PagerDuty teams seen in the data (directory or log entries) that the map claims neither by
# id nor by name, with the counted incidents that list them (trigger entry, incident or
# service), how many of those name no claimed team beside them in one list and how many have no
# team; services of unattributed incidents; services whose incidents list teams of several teams
# (int_pagerduty_incident_teams.claiming_teams).
_UNCLAIMED_PAGERDUTY_SQL = """
with counted as (
    select teams.*
    from intermediate.int_pagerduty_incident_teams as teams
    where teams.incident_id in (select incident_id from marts.fct_incidents)
),

listed as (
    select unnest(unclaimed_team_ids) as team_id, team, shared_team_ids from counted
)

select
    owners.team_id || ' (' || coalesce(owners.team_name, '?') || ')' as identifier,
    count(listed.team_id) as listed_on,
    count(listed.team_id) filter (where not list_contains(listed.shared_team_ids, listed.team_id)) as alone_on,
    count(listed.team_id) filter (where listed.team is null) as unattributed
from intermediate.int_pagerduty_team_owners as owners
left join listed using (team_id)
where owners.team is null
group by all
order by identifier
"""

_UNATTRIBUTED_SERVICES_SQL = """
select service_id, count(*) from marts.fct_incidents where team is null group by service_id order by service_id
"""

_SEVERAL_CLAIMS_SQL = """
select incidents.service_id, count(*)
from marts.fct_incidents as incidents
inner join intermediate.int_pagerduty_incident_teams as teams using (incident_id)
where teams.claiming_teams > 1
group by incidents.service_id
order by incidents.service_id
"""

# Atlassian teams the tickets' Team field names that the map claims neither by id nor by name,
# with the tickets naming them and how many of those have no team (the others count for their
# component's or project's team, which the Team field contradicts); then, for tickets without a
# team that name no Atlassian team, the project no team claims or its first (unclaimed) component.
_UNMAPPED_JIRA_SQL = """
with tickets as (
    select tickets.team, tickets.project_key, tickets.components, teams.jira_team_id
    from marts.fct_tickets as tickets
    left join intermediate.int_jira_issue_teams as teams using (issue_id)
)

select
    'jira_team' as source,
    owners.team_id || ' (' || coalesce(owners.team_name, '?') || ')' as identifier,
    count(tickets.jira_team_id) as records,
    count(tickets.jira_team_id) filter (where tickets.team is null) as unattributed
from intermediate.int_jira_team_owners as owners
left join tickets on tickets.jira_team_id = owners.team_id
where owners.team is null
group by all
union all
select
    case when len(components) > 0 then 'jira_component' else 'jira_project' end as source,
    case when len(components) > 0 then project_key || '/' || components[1] else project_key end as identifier,
    count(*) as records,
    count(*) as unattributed
from tickets
where team is null and jira_team_id is null
group by all
order by source, identifier
"""


# Teams of a tool whose names several teams of the map claim, none by id (int_*_team_owners,
# macro teams_claimed_by_id_or_name): each with the claims, latest name first.
_CONTESTED_SQL = """
select team_id, team_name, team, name_claims
from intermediate.{owners}
where claimed_by = 'name' and len(list_distinct(list_transform(name_claims, claim -> claim.team))) > 1
order by team_id
"""


def _contested(conn, owners: str, source: str) -> list[str]:
    """The teams of ``owners`` (int_pagerduty_team_owners, int_jira_team_owners) claimed through
    their names by several teams of the map, each naming every claim and the team it counts for."""
    return [f"{source} {team_id} ({team_name}): claimed by "
            + " and by ".join(f"{claim['team']} (as {claim['team_name']!r}"
                              + (", its latest name)" if claim["team_name"] == team_name else ", a former name)")
                              for claim in claims)
            + f"; counted for {team}"
            for team_id, team_name, team, claims in conn.execute(_CONTESTED_SQL.format(owners=owners)).fetchall()]


def _contested_said(contested: list[str], key: str) -> str:
    return (f"{len(contested)} teams are claimed through their names by several teams of the map (as when a "
            "renamed team's old name is now another's) and count for the team claiming the latest name; claim each "
            f"by id in team_map.yml ({key}: [its id]) under the team it belongs to")


def _records(records: int, unattributed: int, counted_for: str) -> str:
    """How many records an unclaimed identifier is on, and how many of them counted for a team
    all the same (``counted_for`` says which)."""
    elsewhere = f", {records - unattributed} counted for {counted_for}" if unattributed < records else ""
    return f" ({records} records{elsewhere})"


def pagerduty_mapping_report(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """The PagerDuty mapping check's result: what to add to the team map (unclaimed teams listed
    on a counted incident with no claimed team beside them in one list, whether it counted by its
    service's claim or for no team, or on no counted incident; services of incidents without a
    team), which services' incidents had several claiming teams to choose from, and which
    unclaimed teams are only ever listed beside a claimed one (nothing to do)."""
    with duckdb.get_connection() as conn:
        teams = conn.execute(_UNCLAIMED_PAGERDUTY_SQL).fetchall()
        services = conn.execute(_UNATTRIBUTED_SERVICES_SQL).fetchall()
        several = conn.execute(_SEVERAL_CLAIMS_SQL).fetchall()
        contested = _contested(conn, "int_pagerduty_team_owners", "pagerduty_team")
    unmapped = [
        f"pagerduty_team {identifier}"
        + (_records(alone_on, unattributed, "their service's team or another list's") if listed_on else "")
        for identifier, listed_on, alone_on, unattributed in teams if alone_on or not listed_on
    ] + [f"pagerduty_service {service_id} ({records} records)" for service_id, records in services]
    shared = [f"pagerduty_team {identifier} (listed on {listed_on} records, each beside a claimed team)"
              for identifier, listed_on, alone_on, _ in teams if listed_on and not alone_on]
    ambiguous = [f"pagerduty_service {service_id} ({records} records)" for service_id, records in several]
    said = []
    if unmapped:
        said.append(f"{len(unmapped)} PagerDuty teams/services no team claims; add them to team_map.yml")
    if ambiguous:
        said.append(f"{len(ambiguous)} services have incidents listing PagerDuty teams of several teams, "
                    "counted for the first claimed one listed; claim the service in team_map.yml "
                    "(pagerduty_services) to choose")
    if contested:
        said.append("PagerDuty: " + _contested_said(contested, "pagerduty_teams"))
    if shared:
        said.append(f"{len(shared)} PagerDuty teams left unclaimed, listed only beside a team's own PagerDuty "
                    "team (e.g. a shared on-call team): nothing to map")
    return dg.AssetCheckResult(
        passed=not unmapped and not ambiguous and not contested,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(said) if said else "every PagerDuty entity is claimed by a team",
        metadata={"unmapped": dg.MetadataValue.json(unmapped), "unmapped_count": len(unmapped),
                  "several_claiming_teams": dg.MetadataValue.json(ambiguous),
                  "claimed_by_several_teams": dg.MetadataValue.json(contested),
                  "unclaimed_shared_teams": dg.MetadataValue.json(shared)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_incidents"]),
    additional_deps=[dg.AssetKey(["intermediate", "int_pagerduty_team_owners"]),
                     dg.AssetKey(["intermediate", "int_pagerduty_incident_teams"])],
    description="PagerDuty teams and services seen in the data that no team of the team map claims.",
)
def pagerduty_entities_are_mapped(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return pagerduty_mapping_report(duckdb)


def jira_mapping_report(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """The Jira mapping check's result: the Atlassian teams (the issues' Team field) no team
    claims, whether or not their tickets counted for their component's or project's team, and
    the projects and components of the other tickets without a team, and the Atlassian teams
    whose names several teams claim."""
    with duckdb.get_connection() as conn:
        rows = conn.execute(_UNMAPPED_JIRA_SQL).fetchall()
        contested = _contested(conn, "int_jira_team_owners", "jira_team")
    unmapped = [f"{source} {identifier}" + _records(records, unattributed, "their component's or project's team")
                for source, identifier, records, unattributed in rows]
    said = []
    if unmapped:
        said.append(f"{len(unmapped)} Jira teams/projects/components no team claims; add them to team_map.yml "
                    "(jira_teams, jira_projects, jira_components)")
    if contested:
        said.append("Atlassian: " + _contested_said(contested, "jira_teams"))
    return dg.AssetCheckResult(
        passed=not unmapped and not contested,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(said) if said else "every Jira entity is claimed by a team",
        metadata={"unmapped": dg.MetadataValue.json(unmapped), "unmapped_count": len(unmapped),
                  "claimed_by_several_teams": dg.MetadataValue.json(contested)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_tickets"]),
    additional_deps=[dg.AssetKey(["intermediate", "int_jira_team_owners"]),
                     dg.AssetKey(["intermediate", "int_jira_issue_teams"])],
    description="Atlassian teams (the Team field), Jira projects and components of tickets that no team of the "
                "team map claims.",
)
def jira_entities_are_mapped(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return jira_mapping_report(duckdb)
