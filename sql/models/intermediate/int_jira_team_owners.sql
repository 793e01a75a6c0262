-- Atlassian teams the issues' Team field (the KPI rules' tickets.team_field) names, each with the
-- team of the team map that claims it (jira_teams, by id or by name, as PagerDuty teams are
-- claimed). A team's name is the one its most recently updated issue shows (a renamed team's
-- older issues may keep its old name).
with jira_teams as (
    select fields.jira_team_id as team_id, fields.jira_team_name as team_name, max(issues.updated_at) as seen_at
    from ({{ jira_issue_team_fields() }}) as fields
    inner join {{ ref('stg_jira__issues') }} as issues using (issue_id)
    where fields.jira_team_id is not null
    group by all
),

owners as (
    {{ teams_claimed_by_id_or_name('jira_teams', 'jira_team') }}
)

select * from owners
