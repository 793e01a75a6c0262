-- stg_pagerduty__teams: one row per PagerDuty team.
-- Grain: team_id.
select
    id as team_id,
    payload ->> 'name' as team_name
from raw.pagerduty__teams
