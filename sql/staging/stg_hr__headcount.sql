-- stg_hr__headcount: one row per employee per monthly headcount snapshot.
-- Grain: snapshot_date x employee_id (employee_id is a salted hash).
select
    snapshot_date::date as snapshot_date,
    employee_id,
    org_unit,
    role,
    critical_role::boolean as is_critical_role
from raw.hr__headcount
