-- fct_team_survey_waves: one row per team and survey wave with its safety score.
-- Grain: team x wave_quarter. A respondent's score is the mean of their answered items
-- (at least 5 of 7). Cells with fewer than 5 respondents are suppressed: mean and sd are null.
with respondents as (
    select
        response_id,
        survey_group,
        wave_quarter,
        avg(score) as person_score
    from staging.stg_survey__responses
    group by all
    having count(*) >= 5
)

select
    teams.team,
    respondents.wave_quarter,
    count(*) as n_respondents,
    count(*) < 5 as is_suppressed,
    case when count(*) >= 5 then avg(respondents.person_score) end as safety_mean,
    case when count(*) >= 5 then stddev_samp(respondents.person_score) end as safety_sd
from respondents
inner join staging.stg_config__team_map as teams
    on teams.source = 'survey_group' and teams.identifier = respondents.survey_group
group by all
