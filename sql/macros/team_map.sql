{#- The team map's claims on a tool's own teams (PagerDuty's, Atlassian's): every team of
    `seen` (a relation with team_id, team_name and seen_at: each name a team was seen under and
    when, latest) with the team of the map that claims it under `source`, by id or by name.
    A claim by id wins. Else the claim through the team's latest name wins over claims through
    names it had before: a renamed team whose old name another team now has (and the map gives
    to that team's owner) stays with the team claiming its current name. `name_claims` lists
    every claim through its names, latest name first; the mapping checks name a team whose
    names several teams of the map claim (not by id), as the map cannot say which is meant. -#}
{% macro teams_claimed_by_id_or_name(seen, source) -%}
    with claims as (
        select distinct identifier, team from {{ ref('stg_config__team_map') }} where source = '{{ source }}'
    ),

    -- Each team's names, latest first (a tie, such as names with no time, by name), in NFC as the
    -- team map's claims are read (a name in NFD, José as e and a combining accent, is the same text).
    names as (
        select
            team_id,
            nfc_normalize(team_name) as team_name,
            row_number() over (partition by team_id order by max(seen_at) desc nulls last, nfc_normalize(team_name))
                as recency
        from {{ seen }}
        group by team_id, nfc_normalize(team_name)
    ),

    name_claims as (
        select
            names.team_id,
            arg_min(claims.team, names.recency) as team,
            list({'team': claims.team, 'team_name': names.team_name} order by names.recency, claims.team)
                as name_claims
        from names
        inner join claims on claims.identifier = names.team_name
        group by names.team_id
    )

    select
        names.team_id,
        names.team_name,
        coalesce(by_id.team, name_claims.team) as team,
        case when by_id.team is not null then 'id' when name_claims.team is not null then 'name' end as claimed_by,
        name_claims.name_claims
    from names
    left join claims as by_id on by_id.identifier = names.team_id
    left join name_claims using (team_id)
    where names.recency = 1
{%- endmacro %}
