with owners as (
    select source, identifier, team from {{ ref('int_team_owners') }}
    union all
    select 'pagerduty_team', team_id, team from {{ ref('int_pagerduty_team_owners') }} where team is not null
    union all
    select 'jira_team', team_id, team from {{ ref('int_jira_team_owners') }} where team is not null
),

teams as (
    select distinct team from {{ ref('stg_config__team_map') }}
)

select
    teams.team,
    {%- for source, column in [
        ('pagerduty_team', 'pagerduty_team_ids'), ('pagerduty_service', 'pagerduty_service_ids'),
        ('jira_project', 'jira_projects'), ('jira_component', 'jira_components'), ('jira_team', 'jira_team_ids'),
        ('hr_org_unit', 'hr_org_units'), ('survey_group', 'survey_groups'),
    ] %}
    coalesce(list(owners.identifier order by owners.identifier) filter (where owners.source = '{{ source }}'), [])
        as {{ column }}{{ "," if not loop.last }}
    {%- endfor %}
from teams
left join owners using (team)
group by teams.team
