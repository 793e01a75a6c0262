"""Asset checks that the team map covers every PagerDuty and Jira entity seen in the data.

An incident or ticket whose service, PagerDuty team, project or component no team claims
keeps its row (team null) but counts for no team, so each check lists the unclaimed
identifiers with the number of records they carry, for the user to add to team_map.yml.
Unknown survey groups and HR org units are reported by the survey/HR quarantine.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.warehouse.pool import WAREHOUSE_POOL

# PagerDuty teams seen in the data (directory or trigger-time log entries) that the map
# claims neither by id nor by name, and services of unattributed incidents.
_UNMAPPED_PAGERDUTY_SQL = """
select 'pagerduty_team' as source, team_id || ' (' || team_name || ')' as identifier, null::bigint as records
from intermediate.int_pagerduty_team_owners
where team is null
union all
select 'pagerduty_service', service_id, count(*)
from marts.fct_incidents
where team is null
group by service_id
order by source, identifier
"""

# A ticket without a team is in a project no team claims, with no claimed component.
_UNMAPPED_JIRA_SQL = """
select
    case when len(components) > 0 then 'jira_component' else 'jira_project' end as source,
    case when len(components) > 0 then project_key || '/' || components[1] else project_key end as identifier,
    count(*) as records
from marts.fct_tickets
where team is null
group by all
order by source, identifier
"""


def _report(duckdb: DuckDBResource, sql: str, what: str) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        rows = conn.execute(sql).fetchall()
    unmapped = [
        f"{source} {identifier}" + (f" ({records} records)" if records is not None else "")
        for source, identifier, records in rows
    ]
    return dg.AssetCheckResult(
        passed=not unmapped,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(unmapped)} {what} no team claims; add them to team_map.yml" if unmapped
                     else f"every {what.split()[0]} entity is claimed by a team"),
        metadata={"unmapped": dg.MetadataValue.json(unmapped), "unmapped_count": len(unmapped)},
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_incidents"]),
    additional_deps=[dg.AssetKey(["intermediate", "int_pagerduty_team_owners"])],
    description="PagerDuty teams and services seen in the data that no team of the team map claims.",
)
def pagerduty_entities_are_mapped(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return _report(duckdb, _UNMAPPED_PAGERDUTY_SQL, "PagerDuty teams/services")


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_tickets"]),
    description="Jira projects and components of tickets that no team of the team map claims.",
)
def jira_entities_are_mapped(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    return _report(duckdb, _UNMAPPED_JIRA_SQL, "Jira projects/components")
