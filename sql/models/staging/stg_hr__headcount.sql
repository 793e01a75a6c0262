select
    snapshot_date::date as snapshot_date,
    employee_id,
    org_unit,
    role,
    critical_role::boolean as is_critical_role
from {{ source('raw', 'hr__headcount') }}
