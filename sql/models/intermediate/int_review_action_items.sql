-- The action items of each post-incident review: a Jira review's sub-tasks (when the KPI
-- rules count them) and the issues it is linked to by the rules' action-item link types; a
-- PagerDuty review's own action items. An item of two reviews belongs to the earlier one.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

issues as (
    select * from {{ ref('stg_jira__issues') }}
),

reviews as (
    select * from {{ ref('int_post_incident_reviews') }}
),

links as (
    select issue_id as from_issue_id, unnest(issue_links) as link from issues
),

jira_items as (
    -- Sub-tasks, as the sub-task names its parent and as the parent lists it.
    select reviews.review_id, issues.issue_id, 'subtask' as found_as
    from reviews
    inner join issues on issues.parent_id = reviews.jira_issue_id
    cross join rules
    where rules.action_items_from_subtasks
    union all
    select reviews.review_id, subtasks.issue_id, 'subtask'
    from reviews
    inner join (select issue_id as parent_id, unnest(subtask_ids) as issue_id from issues) as subtasks
        on subtasks.parent_id = reviews.jira_issue_id
    cross join rules
    where rules.action_items_from_subtasks
    union all
    select reviews.review_id, links.link.issue_id, 'issue_link'
    from reviews
    inner join links on links.from_issue_id = reviews.jira_issue_id
    cross join rules
    where {{ link_is_one_of('links.link', 'rules.action_item_issue_link_types') }}
),

items as (
    select
        'jira:' || issues.issue_id as action_item_id,
        jira_items.review_id,
        'jira' as source,
        min(jira_items.found_as) as found_as,  -- issue_link before subtask when both
        issues.created_at,
        {{ jira_issue_done_at('issues') }} as closed_at,
        teams.team,
        teams.team_source
    from jira_items
    -- Only issues the warehouse holds: a link to an issue outside the synced history has no dates.
    inner join issues using (issue_id)
    left join {{ ref('int_jira_issue_teams') }} as teams using (issue_id)
    group by all
    union all
    select
        'pagerduty:' || items.action_item_id,
        reviews.review_id,
        'pagerduty',
        'pagerduty',
        items.created_at,
        items.completed_at,
        null,
        null
    from {{ ref('stg_pagerduty__review_action_items') }} as items
    inner join reviews on reviews.source = 'pagerduty' and reviews.pagerduty_incident_id = items.incident_id
)

select items.*
from items
inner join reviews using (review_id)
qualify row_number() over (partition by items.action_item_id order by reviews.created_at, items.review_id) = 1
