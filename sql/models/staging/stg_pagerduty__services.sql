select
    id as service_id,
    name as service_name,
    team_ids,
    {{ is_test_service('name', 'description') }} as is_test
from {{ source('raw', 'pagerduty__services') }}
