select
    responses.response_id,
    owners.team,
    responses.survey_group,
    responses.submitted_at,
    coalesce(responses.wave_quarter, date_trunc('quarter', responses.submitted_at)::date) as wave_quarter,
    responses.item_set,
    responses.item_no,
    responses.answer,
    responses.score,
    responses.scale_points
from (
    -- The loader stores each response's wave (its file's wave setting, else the quarter of the
    -- day it was submitted in the file's time zone). Rows loaded before it did have no
    -- wave_quarter, or null: they take the calendar quarter of submitted_at (UTC), as they did.
    select * from {{ source('restricted', 'survey__responses') }}
    union all by name
    select null::date as wave_quarter where false
) as responses
inner join {{ ref('int_team_owners') }} as owners
    on owners.source = 'survey_group' and owners.identifier = responses.survey_group
