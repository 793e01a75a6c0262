-- stg_survey__responses: one row per survey response and answered item, with its team and wave.
-- Grain: response_id x item_no. Respondent-level, so it lives only in the restricted schema;
-- every other schema holds team-wave aggregates with suppression applied.
-- The loader has matched items by text, checked answers against 1..K and reverse-scored
-- (K + 1 - answer); the wave is the calendar quarter in which the response was submitted.
select
    responses.response_id,
    teams.team,
    responses.survey_group,
    responses.submitted_at,
    date_trunc('quarter', responses.submitted_at)::date as wave_quarter,
    responses.item_no,
    responses.answer,
    responses.score,
    responses.scale_points
from restricted.survey__responses as responses
inner join staging.stg_config__team_map as teams
    on teams.source = 'survey_group' and teams.identifier = responses.survey_group
