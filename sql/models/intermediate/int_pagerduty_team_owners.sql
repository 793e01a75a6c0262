-- PagerDuty teams seen in the data: the team directory (a team's current name), and every team
-- log entries name, with when (a team deleted since still owns the incidents raised while it
-- existed; a renamed team's entries keep its old name).
with pagerduty_teams as (
    select team_id, team_name, 'infinity'::timestamp as seen_at from {{ ref('stg_pagerduty__teams') }}
    union all
    select team_id, team_name, max(created_at) as seen_at
    from (
        select unnest(team_ids) as team_id, unnest(team_names) as team_name, created_at
        from {{ ref('stg_pagerduty__log_entries') }}
        where len(team_ids) > 0
    )
    where team_id is not null
    group by all
),

owners as (
    {{ teams_claimed_by_id_or_name('pagerduty_teams', 'pagerduty_team') }}
)

select * from owners
