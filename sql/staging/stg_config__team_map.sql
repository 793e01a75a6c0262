-- stg_config__team_map: one row per team in the user's team map.
-- Grain: team. Each source's name for the team: PagerDuty team, Jira project key,
-- HR org unit, survey group.
select
    trim(team) as team,
    trim(pagerduty_team) as pagerduty_team,
    upper(trim(jira_project)) as jira_project,
    trim(hr_org_unit) as hr_org_unit,
    trim(survey_group) as survey_group
from raw.config__team_map
