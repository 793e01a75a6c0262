-- stg_pagerduty__services: one row per PagerDuty service with its *current* owning team.
-- Grain: service_id. The owning team is the first team PagerDuty lists on the service.
-- is_test: the service is marked as a test service by the word "test" in its name or
-- description (e.g. "Checkout synthetic checks (test)"); its incidents count in no KPI.
select
    id as service_id,
    payload ->> 'name' as service_name,
    payload -> 'teams' -> 0 ->> 'id' as team_id,
    regexp_matches(coalesce(payload ->> 'name', '') || ' ' || coalesce(payload ->> 'description', ''),
                   '(?i)\btest\b') as is_test
from raw.pagerduty__services
