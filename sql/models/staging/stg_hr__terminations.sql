select
    employee_id,
    org_unit,
    role,
    critical_role::boolean as is_critical_role,
    termination_date::date as termination_date,
    voluntary::boolean as is_voluntary
from {{ source('raw', 'hr__terminations') }}
