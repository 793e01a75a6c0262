select
    id as team_id,
    name as team_name
from {{ source('raw', 'pagerduty__teams') }}
