select
    trim(team) as team,
    source,
    trim(identifier) as identifier
from {{ source('raw', 'config__team_map') }}
