-- dim_teams: one row per team of the team map, with the identifiers it claims in each source.
-- Grain: team. pagerduty_team_ids lists the PagerDuty teams the map names (by name or id)
-- that exist in PagerDuty; the others are reported by the team map's asset check.
with claims as (
    select team, source, list(identifier order by identifier) as identifiers
    from staging.stg_config__team_map
    group by all
),

pagerduty_teams as (
    select map.team, list(distinct pd.team_id order by pd.team_id) as pagerduty_team_ids
    from staging.stg_config__team_map as map
    inner join staging.stg_pagerduty__teams as pd
        on map.identifier in (pd.team_id, pd.team_name)
    where map.source = 'pagerduty_team'
    group by all
)

select
    teams.team,
    coalesce(pagerduty_teams.pagerduty_team_ids, []) as pagerduty_team_ids,
    coalesce(max(claims.identifiers) filter (where claims.source = 'pagerduty_service'), []) as pagerduty_service_ids,
    coalesce(max(claims.identifiers) filter (where claims.source = 'jira_project'), []) as jira_projects,
    coalesce(max(claims.identifiers) filter (where claims.source = 'jira_component'), []) as jira_components,
    coalesce(max(claims.identifiers) filter (where claims.source = 'hr_org_unit'), []) as hr_org_units,
    coalesce(max(claims.identifiers) filter (where claims.source = 'survey_group'), []) as survey_groups
from (select distinct team from staging.stg_config__team_map) as teams
left join claims using (team)
left join pagerduty_teams using (team)
group by teams.team, pagerduty_teams.pagerduty_team_ids
