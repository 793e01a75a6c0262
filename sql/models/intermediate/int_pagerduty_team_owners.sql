with team_map as (
    select * from {{ ref('stg_config__team_map') }} where source = 'pagerduty_team'
),

-- PagerDuty teams seen in the data: the team directory, and every team log entries name (a
-- team deleted since still owns the incidents raised while it existed).
pagerduty_teams as (
    select team_id, team_name from {{ ref('stg_pagerduty__teams') }}
    union
    select distinct team_id, team_name
    from (
        select unnest(team_ids) as team_id, unnest(team_names) as team_name
        from {{ ref('stg_pagerduty__log_entries') }}
        where len(team_ids) > 0
    )
    where team_id is not null
)

-- The team map names a PagerDuty team by id or by name; a claim by id wins.
select
    seen.team_id,
    max(seen.team_name) as team_name,
    coalesce(max(by_id.team), max(by_name.team)) as team
from pagerduty_teams as seen
left join team_map as by_id on by_id.identifier = seen.team_id
left join team_map as by_name on by_name.identifier = seen.team_name
group by seen.team_id
