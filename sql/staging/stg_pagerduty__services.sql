-- stg_pagerduty__services: one row per PagerDuty service with its owning team.
-- Grain: service_id. The owning team is the first team PagerDuty lists on the service.
select
    id as service_id,
    payload ->> 'name' as service_name,
    payload -> 'teams' -> 0 ->> 'id' as team_id
from raw.pagerduty__services
