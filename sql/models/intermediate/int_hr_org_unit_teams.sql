-- The team each HR org unit belongs to, as the team map claims it: how headcount, leavers and
-- ticket reporters are attributed to teams.
select identifier as org_unit, team
from {{ ref('int_team_owners') }}
where source = 'hr_org_unit'
