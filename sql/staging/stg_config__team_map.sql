-- stg_config__team_map: the user's team map, one row per identifier a team claims in a source.
-- Grain: source x identifier (the loader refuses an identifier claimed by two teams).
-- source is one of pagerduty_team (name or id), pagerduty_service (id), jira_project (key),
-- jira_component (PROJECT/Component), hr_org_unit, survey_group.
select
    trim(team) as team,
    source,
    trim(identifier) as identifier
from raw.config__team_map
