-- The frozen survey cells as today's team map attributes them, the way incidents, tickets and
-- headcount follow it. A cell is written once and never recomputed (the anonymity rules, so a
-- suppressed cell cannot be revealed by difference); it stores the survey groups its team had
-- that night, and counts for the team of today's map that owns all of them: a renamed team
-- keeps its waves, a merged team takes the cells of the teams it absorbed. A team taking
-- several cells of a wave gets their respondent-weighted mean, only if none is suppressed (a
-- suppressed cell's figures are unknown, and a mean without them would misstate the team).
-- A cell whose groups now belong to several teams (a split) or to none counts for no team: the
-- asset check frozen_survey_cells_have_a_team names it. A cell frozen before the groups were
-- stored (survey_groups null) counts for the team of its name, as it did then.
with cells as (
    select team as frozen_team, wave_quarter, scale, is_suppressed, n_respondents, score_mean, survey_groups
    from {{ source('marts', 'fct_team_survey_waves') }}
),

group_owners as (
    select {{ survey_group_key('identifier') }} as group_key, team
    from {{ ref('int_team_owners') }}
    where source = 'survey_group'
),

teams as (
    select distinct team from {{ ref('stg_config__team_map') }}
),

-- Per cell with stored groups: the teams that own them now, and whether one has no owner.
group_teams as (
    select
        cells.frozen_team,
        cells.wave_quarter,
        cells.scale,
        count(distinct group_owners.team) as owning_teams,
        bool_or(group_owners.team is null) as has_unowned_group,
        min(group_owners.team) as owning_team
    from cells
    cross join unnest(cells.survey_groups) as stored (group_key)
    left join group_owners on group_owners.group_key = {{ survey_group_key('stored.group_key') }}
    group by all
),

attributed as (
    select
        cells.*,
        case
            when cells.survey_groups is null then teams.team
            when group_teams.owning_teams = 1 and not group_teams.has_unowned_group then group_teams.owning_team
        end as team
    from cells
    left join group_teams
        on group_teams.frozen_team = cells.frozen_team
        and group_teams.wave_quarter = cells.wave_quarter
        and group_teams.scale = cells.scale
    left join teams on teams.team = cells.frozen_team
)

select
    team,
    wave_quarter,
    scale,
    bool_or(is_suppressed) as is_suppressed,
    case when not bool_or(is_suppressed) then sum(n_respondents)::bigint end as n_respondents,
    case when not bool_or(is_suppressed) then sum(n_respondents * score_mean) / sum(n_respondents) end as score_mean,
    list(frozen_team order by frozen_team) as frozen_teams
from attributed
where team is not null
group by all
