select
    responses.response_id,
    owners.team,
    responses.survey_group,
    responses.submitted_at,
    date_trunc('quarter', responses.submitted_at)::date as wave_quarter,
    responses.item_set,
    responses.item_no,
    responses.answer,
    responses.score,
    responses.scale_points
from {{ source('restricted', 'survey__responses') }} as responses
inner join {{ ref('int_team_owners') }} as owners
    on owners.source = 'survey_group' and owners.identifier = responses.survey_group
