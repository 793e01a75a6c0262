{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

-- The carry-forward of every survey scale, written once: the team's latest reportable wave of
-- an earlier quarter describes the month, for at most var safety_max_wave_age_quarters
-- quarters after it (an older one: no score, stale). The waves are the frozen cells as today's
-- team map attributes them (int_team_survey_waves: a renamed team keeps its waves, a merged one
-- takes both teams' cells). marts.mart_team_month takes safety and accountability from here;
-- the models read every scale (Clark's stages too) from here.
with team_months as (
    select
        team,
        period_month,
        date_trunc('quarter', period_month)::date as period_quarter
    from {{ ref('int_team_month_headcount') }}
    where period_month >= '{{ var("history_start") }}'::date
),

reportable_waves as (
    select team, scale, wave_quarter, n_respondents, score_mean
    from {{ ref('int_team_survey_waves') }}
    where not is_suppressed
),

scales as (
    select distinct scale from reportable_waves
),

lagged as (
    select
        team_months.team,
        team_months.period_month,
        scales.scale,
        waves.wave_quarter,
        waves.n_respondents,
        waves.score_mean,
        datediff('quarter', waves.wave_quarter, team_months.period_quarter)
            > {{ var('safety_max_wave_age_quarters') }} as is_wave_stale
    from team_months
    cross join scales
    asof join reportable_waves as waves
        on waves.team = team_months.team
        and waves.scale = scales.scale
        and team_months.period_quarter > waves.wave_quarter
)

select
    team,
    period_month,
    scale,
    case when not is_wave_stale then wave_quarter end as wave_quarter,
    case when not is_wave_stale then n_respondents end as n_respondents,
    case when not is_wave_stale then score_mean end as score_lagged,
    is_wave_stale
from lagged
{{ in_partition_window('period_month') }}
