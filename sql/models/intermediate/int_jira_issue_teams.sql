-- The team each Jira issue counts for: the owner of its first component the team map claims
-- (PROJECT/Component, for projects several teams share), else of its project. Tickets, reviews
-- and action items are attributed through it.
with issues as (
    select issue_id, project_key, components from {{ ref('stg_jira__issues') }}
),

owners as (
    select * from {{ ref('int_team_owners') }}
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
        on owners.source = 'jira_component' and owners.identifier = components.project_key || '/' || components.component
    group by components.issue_id
)

select
    issues.issue_id,
    coalesce(component_claims.team, by_project.team) as team,
    case
        when component_claims.team is not null then 'component'
        when by_project.team is not null then 'project'
    end as team_source
from issues
left join component_claims using (issue_id)
left join owners as by_project
    on by_project.source = 'jira_project' and by_project.identifier = issues.project_key
