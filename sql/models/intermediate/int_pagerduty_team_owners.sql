-- PagerDuty teams seen in the data: the team directory, and every team log entries name (a
-- team deleted since still owns the incidents raised while it existed).
with pagerduty_teams as (
    select team_id, team_name from {{ ref('stg_pagerduty__teams') }}
    union
    select distinct team_id, team_name
    from (
        select unnest(team_ids) as team_id, unnest(team_names) as team_name
        from {{ ref('stg_pagerduty__log_entries') }}
        where len(team_ids) > 0
    )
    where team_id is not null
),

owners as (
    {{ teams_claimed_by_id_or_name('pagerduty_teams', 'pagerduty_team') }}
)

select * from owners
