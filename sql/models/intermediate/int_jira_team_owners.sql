-- Atlassian teams the issues' Team field (the KPI rules' tickets.team_field) names, each with the
-- team of the team map that claims it (jira_teams, by id or by name, as PagerDuty teams are claimed).
with jira_teams as (
    select distinct jira_team_id as team_id, jira_team_name as team_name
    from ({{ jira_issue_team_fields() }})
    where jira_team_id is not null
),

owners as (
    {{ teams_claimed_by_id_or_name('jira_teams', 'jira_team') }}
)

select * from owners
