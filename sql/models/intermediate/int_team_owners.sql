-- Every claim of the team map; PagerDuty and Atlassian (Jira) teams, claimed by name or id, are
-- resolved to their ids in int_pagerduty_team_owners and int_jira_team_owners, so exports can be
-- attributed before any API sync.
select source, identifier, team
from {{ ref('stg_config__team_map') }}
where source not in ('pagerduty_team', 'jira_team')
