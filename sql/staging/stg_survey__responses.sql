-- stg_survey__responses: one row per survey response and Edmondson item, scored.
-- Grain: response_id x item_no. Items are matched by their text (case and spacing ignored),
-- never by column position; reverse-scored items become 8 - answer on the 1..7 scale.
-- The wave is the calendar quarter in which the response was submitted.
with items (item_no, item_text, is_reversed) as (
    values
        (1, 'if you make a mistake on this team, it is often held against you', true),
        (2, 'members of this team are able to bring up problems and tough issues', false),
        (3, 'people on this team sometimes reject others for being different', true),
        (4, 'it is safe to take a risk on this team', false),
        (5, 'it is difficult to ask other members of this team for help', true),
        (6, 'no one on this team would deliberately act in a way that undermines my efforts', false),
        (7, 'working with members of this team, my unique skills and talents are valued and utilized', false)
),

answers as (
    unpivot raw.survey__responses
    on columns(* exclude (response_id, submitted_at, team))
    into name item_text value answer
)

select
    answers.response_id,
    answers.team as survey_group,
    answers.submitted_at::timestamp as submitted_at,
    date_trunc('quarter', answers.submitted_at::timestamp)::date as wave_quarter,
    items.item_no,
    answers.answer::integer as answer,
    case when items.is_reversed then 8 - answers.answer::integer else answers.answer::integer end as score
from answers
inner join items
    on lower(regexp_replace(trim(answers.item_text), '\s+', ' ', 'g')) = items.item_text
where answers.answer is not null and trim(answers.answer) <> ''
