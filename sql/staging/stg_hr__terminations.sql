-- stg_hr__terminations: one row per employee leaving.
-- Grain: employee_id x termination_date (employee_id is a salted hash).
select
    employee_id,
    org_unit,
    role,
    critical_role::boolean as is_critical_role,
    termination_date::date as termination_date,
    voluntary::boolean as is_voluntary
from raw.hr__terminations
