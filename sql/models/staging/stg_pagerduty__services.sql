select
    id as service_id,
    name as service_name,
    team_id,
    -- A test service says so in its name or description, e.g. "Checkout synthetic checks (test)".
    regexp_matches(coalesce(name, '') || ' ' || coalesce(description, ''), '(?i)\btest\b') as is_test
from {{ source('raw', 'pagerduty__services') }}
