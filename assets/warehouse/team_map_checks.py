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
latest name, and only a claim by id can say otherwise; and every claim of the map that matches
nothing seen in the synced data (an id typed in lower case, a typo, a component in another case):
such a claim does nothing, so its service or tickets go to another claim or to no team without
a word. The Jira check also names a Jira field of the KPI rules that Jira sent with no stored
issue: Jira leaves out a field the site does not have, so a wrong field id silently finds no
review's incident or no ticket's Atlassian team.
Unknown survey groups and HR org units are reported by the survey/HR quarantine.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.jira.resource import CLASSIFICATION_RULES_VARIABLE, KPI_RULES_VARIABLE
from assets.kpi_rules import RULES_KEYS as KPI_RULES_KEYS
from assets.landing.team_map import SOURCES, identifier_key
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


# What each tool's claims can match, as the models match them (exactly, in the case written, in
# NFC as the team map's claims are read: the models' team names are, components made so here):
# services by id, those the services sync lists (a retired service with no incidents still owns
# its claim) and those incidents name (a deleted service); PagerDuty and Atlassian teams by id or
# by any name they have had (int_*_team_owners: the current name; an older one only as a claim
# through it, name_claims, which is all a claim on it can match); projects and components those of
# the stored issues (Jira has no listing the sync reads). {tool_has_data}: whether the tool has
# synced anything, else every claim would match nothing.
_SEEN_PAGERDUTY_SQL = """
select 'pagerduty_service' as source, service_id as identifier from staging.stg_pagerduty__services
union select 'pagerduty_service', service_id from staging.stg_pagerduty__incidents
union select 'pagerduty_team', team_id from intermediate.int_pagerduty_team_owners
union select 'pagerduty_team', team_name from intermediate.int_pagerduty_team_owners
union select 'pagerduty_team', claim.team_name
from (select unnest(name_claims) as claim from intermediate.int_pagerduty_team_owners)
"""

_SEEN_JIRA_SQL = """
select 'jira_project' as source, project_key as identifier from staging.stg_jira__issues
union select 'jira_component', nfc_normalize(project_key || '/' || unnest(components)) from staging.stg_jira__issues
union select 'jira_team', team_id from intermediate.int_jira_team_owners
union select 'jira_team', team_name from intermediate.int_jira_team_owners
union select 'jira_team', claim.team_name
from (select unnest(name_claims) as claim from intermediate.int_jira_team_owners)
"""

# Claims of the map (of `sources`) that match nothing `seen`. Only when the tool has synced
# something (services, incidents or issues).
_CLAIMS_MATCHING_NOTHING_SQL = """
with seen as ({seen}),

claims as (
    select distinct team, source, identifier
    from staging.stg_config__team_map
    where source in {sources} and {tool_has_data}
)

select claims.team, claims.source, claims.identifier
from claims
where not exists (
    select 1 from seen where seen.source = claims.source and seen.identifier = claims.identifier
)
order by claims.team, claims.source, claims.identifier
"""

_TEAM_MAP_KEYS = {source: key for key, source in SOURCES.items()}

# What a claim of each source names, for the message.
_CLAIMED_THINGS = {"pagerduty_service": "service the PagerDuty sync lists or an incident names",
                   "pagerduty_team": "PagerDuty team (id or name) seen in the PagerDuty data",
                   "jira_project": "project of a stored Jira issue",
                   "jira_component": "PROJECT/Component of a stored Jira issue",
                   "jira_team": "Atlassian team (id or name) a stored issue's Team field names"}


def _claims_matching_nothing(conn, seen: str, sources: tuple[str, ...], tool_has_data: str) -> list[str]:
    """The team map's claims of ``sources`` that match nothing ``seen`` (SQL of source,
    identifier rows), each naming the team, the team map key and the identifier, and what it
    would match if it were an export's name (identifier_key): ignoring case, or also spacing,
    invisible characters and quotes (a double or no-break space, a pasted zero-width space)."""
    rows = conn.execute(_CLAIMS_MATCHING_NOTHING_SQL.format(
        seen=seen, sources=str(sources), tool_has_data=tool_has_data)).fetchall()
    seen_by_key: dict[tuple[str, str], set[str]] = {}
    if rows:
        for source, identifier in conn.execute(
                f"select source, identifier from ({seen}) where identifier is not null").fetchall():
            seen_by_key.setdefault((source, identifier_key(identifier)), set()).add(identifier)
    said = []
    for team, source, identifier in rows:
        alike = sorted(seen_by_key.get((source, identifier_key(identifier)), ()))
        said.append(_claim_matching_nothing(team, source, identifier, alike))
    return said


# Jira keeps a component's id through a rename and writes it in no issue's history, so the issues
# synced before it may keep the old name until they change: a claim of the new name matches none.
_COMPONENT_RENAMED = ("; if the component was renamed in Jira, the issues synced before may keep its old name (a "
                      "rename is in no issue's history, so the sync need not read them again): claim the old name as "
                      "well, or run raw/jira__issues once with full_refresh: true to read them again")


def _claim_matching_nothing(team: str, source: str, identifier: str, alike: list[str]) -> str:
    said = f"{team}: {_TEAM_MAP_KEYS[source]} {identifier!r} matches no {_CLAIMED_THINGS[source]}"
    if not alike:
        return said + (_COMPONENT_RENAMED if source == "jira_component" else "")
    names = " and ".join(repr(name) for name in alike)
    if all(name.lower() == identifier.lower() for name in alike):
        return f"{said}; ignoring case it matches {names} (identifiers match in the case the tool writes them)"
    return (f"{said}; ignoring case, spacing, invisible characters and quotes it matches {names} (identifiers match "
            "as the tool writes them, case, spaces and quotes included)")


def _claims_said(claims: list[str]) -> str:
    return (f"{len(claims)} claims of team_map.yml match nothing in the synced data, so they do nothing and what "
            "they meant goes to another claim or to no team; correct them (the case included) or remove them")


# The rules file's key of each KPI rules column naming Jira fields (assets/kpi_rules.py).
_RULES_KEYS = {name: f"{section}.{key}" for (section, key), (name, _) in KPI_RULES_KEYS.items()}
_RULES_FIELDS_SQL = """
select incident_link_fields, incident_link_text_fields, [ticket_team_field] from raw.config__kpi_rules
"""


def _rules_fields_on_no_issue(conn) -> list[str]:
    """The Jira custom fields the KPI rules (as loaded, raw.config__kpi_rules) read that Jira sent
    with no stored issue, each named with its rules file key. Jira answers a field the site has
    on every issue (null when empty) and leaves out one it does not have, so a field id on no
    stored issue (there being some) is one the site does not have: a neighbouring id copied
    from GET /rest/api/3/field, or the default Team field on a site without Teams."""
    if not conn.execute("select exists (select 1 from raw.jira__issues)").fetchone()[0]:
        return []
    columns = ("incident_link_fields", "incident_link_text_fields", "ticket_team_field")
    configured = dict(zip(columns, conn.execute(_RULES_FIELDS_SQL).fetchone() or ([], [], []), strict=True))
    return [f"{_RULES_KEYS[column]}: {field}"
            for column in columns for field in configured[column] or []
            if field and field.startswith("customfield_") and not conn.execute(
                "select exists (select 1 from raw.jira__issues where json_exists(payload, ?))",
                [f"$.fields.{field}"]).fetchone()[0]]


_RULE_VALUES_SQL = """
select rules, rule_order, ticket_class, selector, condition, value, issues, rule_issues
from intermediate.int_jira_rule_values
order by rules desc, rule_order, selector, condition, value
"""


def _rules_matching_nothing(conn) -> tuple[list[str], list[str], bool]:
    """The rules (int_jira_rule_values) that select no stored issue, their conditions together,
    each named by its selectors no stored issue matches (or, when each matches some issue, by
    its values that never meet on one issue), and every value no stored issue has, each named
    with its place in its rules file; and whether an issue type is among those values (Jira may
    have translated its name). Nothing when no issue is stored. The KPI rules' reviews
    count only while no PagerDuty review is stored either: a site that writes its reviews in
    PagerDuty has none in Jira, and the shipped review types would name nothing there every night."""
    if not conn.execute("select exists (select 1 from staging.stg_jira__issues)").fetchone()[0]:
        return [], [], False
    rows = conn.execute(_RULE_VALUES_SQL).fetchall()
    reviews_elsewhere = conn.execute("select exists (select 1 from intermediate.int_post_incident_reviews "
                                     "where source = 'pagerduty')").fetchone()[0]

    def where(rules: str, rule_order: int | None, ticket_class: str | None, condition: str) -> str:
        if rules == "ticket_classification":
            return f"ticket classification rule {rule_order} ({ticket_class}) {condition}"
        return f"KPI rules {_RULES_KEYS['review_' + condition]}"

    failing: dict[tuple[str, int | None], dict[str, list[tuple[str, int]]]] = {}
    for rules, rule_order, ticket_class, selector, condition, value, issues, rule_issues in rows:
        if rule_issues == 0 and not (rules == "kpi_rules" and reviews_elsewhere):
            named = f"{where(rules, rule_order, ticket_class, condition)} {value!r}"
            failing.setdefault((rules, rule_order), {}).setdefault(selector, []).append((named, issues))
    selecting_nothing = []
    for selectors in failing.values():
        unmatched = [" nor ".join(named for named, _ in values) + " matches no issue"
                     for values in selectors.values() if not any(issues for _, issues in values)]
        selecting_nothing.append("; ".join(unmatched) or " with ".join(
            " or ".join(named for named, _ in values) for values in selectors.values()) + " never meet on one issue")
    values = [f"{where(rules, rule_order, ticket_class, condition)} {value!r}"
              for rules, rule_order, ticket_class, _, condition, value, issues, _ in rows if not issues]
    types_unmatched = any(condition == "issue_types" and not issues for _, _, _, _, condition, _, issues, _ in rows)
    return selecting_nothing, values, types_unmatched


def jira_rules_report(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """The Jira rules check's result: the rules (ticket classification, post-incident reviews of
    the KPI rules) that select no stored issue, their conditions together (failing), and every
    value of the rules no stored issue has (named only: a type or label the site has not used
    yet is no mistake)."""
    with duckdb.get_connection() as conn:
        selectors, values, types_unmatched = _rules_matching_nothing(conn)
    said = []
    if selectors:
        said.append(f"{len(selectors)} rules select no stored Jira issue ({'; '.join(selectors)}): the "
                    f"tickets they mean stay unclassified, the reviews uncounted; correct the values in the rules files "
                    f"({CLASSIFICATION_RULES_VARIABLE}, default config/ticket_classification.yml; {KPI_RULES_VARIABLE}, "
                    "default config/kpi_rules.yml): a name or label matches in any case but must be spelt as Jira "
                    "sends it")
    if values:
        said.append(f"{len(values)} values of the rules match no stored issue ({'; '.join(values)}): a typo, or a "
                    "type, label or project the site has not used yet")
    if selectors or types_unmatched:
        said.append("Jira sends an issue type's name in the language of the account the sync reads with (its own "
                    "types Bug, Task, Story, Epic and Sub-task are translated, e.g. Fehler for Bug): name the type "
                    "as marts.fct_tickets.issue_type shows it, or by its id (issue_type_id), the same in every language")
    return dg.AssetCheckResult(
        passed=not selectors,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(said) if said else "every value of the Jira rules matches a stored issue",
        metadata={"rules_selecting_nothing": dg.MetadataValue.json(selectors),
                  "values_matching_nothing": dg.MetadataValue.json(values)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_tickets"]),
    additional_deps=[dg.AssetKey(["intermediate", "int_jira_rule_values"]),
                     dg.AssetKey(["intermediate", "int_post_incident_reviews"])],
    description="Rules of the ticket classification and of the post-incident reviews (KPI rules) that select no "
                "stored Jira issue (the reviews' only while no PagerDuty review is stored either), and every value "
                "of theirs that no stored issue has (a typo, a translated issue type name).",
)
def jira_rules_match_issues(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return jira_rules_report(duckdb)


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
    unclaimed teams are only ever listed beside a claimed one (nothing to do), and the map's claims
    of services and PagerDuty teams that match none seen."""
    with duckdb.get_connection() as conn:
        teams = conn.execute(_UNCLAIMED_PAGERDUTY_SQL).fetchall()
        services = conn.execute(_UNATTRIBUTED_SERVICES_SQL).fetchall()
        several = conn.execute(_SEVERAL_CLAIMS_SQL).fetchall()
        contested = _contested(conn, "int_pagerduty_team_owners", "pagerduty_team")
        claims = _claims_matching_nothing(
            conn, _SEEN_PAGERDUTY_SQL, ("pagerduty_service", "pagerduty_team"),
            "exists (select 1 from staging.stg_pagerduty__services union all "
            "select 1 from staging.stg_pagerduty__incidents)")
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
    if claims:
        said.append("PagerDuty: " + _claims_said(claims))
    if shared:
        said.append(f"{len(shared)} PagerDuty teams left unclaimed, listed only beside a team's own PagerDuty "
                    "team (e.g. a shared on-call team): nothing to map")
    return dg.AssetCheckResult(
        passed=not unmapped and not ambiguous and not contested and not claims,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(said) if said else "every PagerDuty entity is claimed by a team",
        metadata={"unmapped": dg.MetadataValue.json(unmapped), "unmapped_count": len(unmapped),
                  "several_claiming_teams": dg.MetadataValue.json(ambiguous),
                  "claimed_by_several_teams": dg.MetadataValue.json(contested),
                  "claims_matching_nothing": dg.MetadataValue.json(claims),
                  "unclaimed_shared_teams": dg.MetadataValue.json(shared)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_incidents"]),
    additional_deps=[dg.AssetKey(["intermediate", "int_pagerduty_team_owners"]),
                     dg.AssetKey(["intermediate", "int_pagerduty_incident_teams"]),
                     dg.AssetKey(["staging", "stg_pagerduty__services"]),
                     dg.AssetKey(["staging", "stg_config__team_map"])],
    description="PagerDuty teams and services seen in the data that no team of the team map claims, and claims "
                "of the team map that match no service or PagerDuty team seen.",
)
def pagerduty_entities_are_mapped(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return pagerduty_mapping_report(duckdb)


def jira_mapping_report(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """The Jira mapping check's result: the Atlassian teams (the issues' Team field) no team
    claims, whether or not their tickets counted for their component's or project's team, and
    the projects and components of the other tickets without a team, the Atlassian teams
    whose names several teams claim, the map's claims of projects, components and Atlassian
    teams that match none seen, and the KPI rules' Jira fields that no stored issue has."""
    with duckdb.get_connection() as conn:
        rows = conn.execute(_UNMAPPED_JIRA_SQL).fetchall()
        contested = _contested(conn, "int_jira_team_owners", "jira_team")
        claims = _claims_matching_nothing(conn, _SEEN_JIRA_SQL, ("jira_project", "jira_component", "jira_team"),
                                          "exists (select 1 from staging.stg_jira__issues)")
        fields = _rules_fields_on_no_issue(conn)
    unmapped = [f"{source} {identifier}" + _records(records, unattributed, "their component's or project's team")
                for source, identifier, records, unattributed in rows]
    said = []
    if unmapped:
        said.append(f"{len(unmapped)} Jira teams/projects/components no team claims; add them to team_map.yml "
                    "(jira_teams, jira_projects, jira_components)")
    if contested:
        said.append("Atlassian: " + _contested_said(contested, "jira_teams"))
    if claims:
        said.append("Jira: " + _claims_said(claims))
    if fields:
        said.append(f"the KPI rules ({KPI_RULES_VARIABLE}, default config/kpi_rules.yml) read Jira fields on no stored "
                    f"issue ({'; '.join(fields)}): Jira leaves out a field the site does not have, so no review names "
                    "its incident and no ticket its Atlassian team through them; set the ids GET /rest/api/3/field "
                    "lists (tickets.team_field: ~ if the site does not use Teams)")
    return dg.AssetCheckResult(
        passed=not unmapped and not contested and not claims and not fields,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(said) if said else "every Jira entity is claimed by a team",
        metadata={"unmapped": dg.MetadataValue.json(unmapped), "unmapped_count": len(unmapped),
                  "claimed_by_several_teams": dg.MetadataValue.json(contested),
                  "claims_matching_nothing": dg.MetadataValue.json(claims),
                  "kpi_rules_fields_on_no_issue": dg.MetadataValue.json(fields)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_tickets"]),
    additional_deps=[dg.AssetKey(["intermediate", "int_jira_team_owners"]),
                     dg.AssetKey(["intermediate", "int_jira_issue_teams"]),
                     dg.AssetKey(["staging", "stg_config__team_map"]),
                     dg.AssetKey(["raw", "config__kpi_rules"]), dg.AssetKey(["raw", "jira__issues"])],
    description="Atlassian teams (the Team field), Jira projects and components of tickets that no team of the "
                "team map claims, claims of the team map that match none seen, and Jira fields of the KPI rules "
                "that no stored issue has.",
)
def jira_entities_are_mapped(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return jira_mapping_report(duckdb)
