{#- The team map's claims on a tool's own teams (PagerDuty's, Atlassian's): every team of
    `seen` (a relation with team_id and team_name: the teams seen in the data) with the team
    of the map that claims it under `source`, by id or by name; a claim by id wins. -#}
{% macro teams_claimed_by_id_or_name(seen, source) -%}
    with claims as (
        select identifier, team from {{ ref('stg_config__team_map') }} where source = '{{ source }}'
    )

    select
        seen.team_id,
        max(seen.team_name) as team_name,
        coalesce(max(by_id.team), max(by_name.team)) as team
    from {{ seen }} as seen
    left join claims as by_id on by_id.identifier = seen.team_id
    left join claims as by_name on by_name.identifier = seen.team_name
    group by seen.team_id
{%- endmacro %}
