-- dim_teams: one row per team of the team map, with its identifier in every source.
-- Grain: team. pagerduty_team_id is null when the map names a PagerDuty team that does not exist.
select
    map.team,
    pd.team_id as pagerduty_team_id,
    map.pagerduty_team,
    map.jira_project,
    map.hr_org_unit,
    map.survey_group
from staging.stg_config__team_map as map
left join staging.stg_pagerduty__teams as pd
    on pd.team_name = map.pagerduty_team
