-- The team each Jira issue counts for: the owner of the Atlassian team its Team field (the KPI
-- rules' tickets.team_field) names when the team map claims it (jira_teams: sites whose teams
-- share projects record ownership there; a sub-task shows its parent's team), else of its first
-- component the team map claims (PROJECT/Component, for projects several teams share), else of
-- its project. Tickets, reviews and action items are attributed through it.
with issues as (
    select issue_id, project_key, components, parent_id, is_subtask from {{ ref('stg_jira__issues') }}
),

team_fields as (
    {{ jira_issue_team_fields() }}
),

owners as (
    select * from {{ ref('int_team_owners') }}
),

-- The Atlassian team each issue names: Jira gives a sub-task its parent's team, so one whose own
-- field is empty takes it from the parent. An issue under an epic has the epic as its parent too
-- (Jira Cloud's parent field replaced Epic Link) but a team of its own: it takes nothing.
named_teams as (
    select issues.issue_id, coalesce(own.jira_team_id, parents.jira_team_id) as jira_team_id
    from issues
    left join team_fields as own on own.issue_id = issues.issue_id
    left join team_fields as parents on issues.is_subtask and parents.issue_id = issues.parent_id
),

team_claims as (
    select named_teams.issue_id, named_teams.jira_team_id, jira_teams.team
    from named_teams
    left join {{ ref('int_jira_team_owners') }} as jira_teams on jira_teams.team_id = named_teams.jira_team_id
),

component_claims as (
    select
        components.issue_id,
        arg_min(owners.team, components.position) as team
    from (
        select issue_id, project_key, unnest(components) as component, generate_subscripts(components, 1) as position
        from issues
    ) as components
    inner join owners
        -- In NFC, as the team map's claims are read (a component named in NFD is the same text).
        on owners.source = 'jira_component'
        and owners.identifier = nfc_normalize(components.project_key || '/' || components.component)
    group by components.issue_id
)

select
    issues.issue_id,
    team_claims.jira_team_id,
    coalesce(team_claims.team, component_claims.team, by_project.team) as team,
    case
        when team_claims.team is not null then 'jira_team'
        when component_claims.team is not null then 'component'
        when by_project.team is not null then 'project'
    end as team_source
from issues
left join team_claims using (issue_id)
left join component_claims using (issue_id)
left join owners as by_project
    on by_project.source = 'jira_project' and by_project.identifier = issues.project_key
