select
    identity_kind,
    identity,
    employee_id
from {{ source('raw', 'config__identity_map') }}
