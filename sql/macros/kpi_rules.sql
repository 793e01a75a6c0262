{#- Rules of the KPI rules file (config/kpi_rules.yml) shared by several models. -#}

{#- A title as repeats compare it: lower case, each number '#' (a run of digits, with any '.'
    or ',' between digits inside it: monitoring tools write a measured value as 91.5 or
    1,204), every run of other characters but letters and '#' one space, trimmed. -#}
{% macro normalised_title(column) -%}
    trim(regexp_replace(regexp_replace(lower({{ column }}), '[0-9]+([.,][0-9]+)*', '#', 'g'), '[^\pL#]+', ' ', 'g'))
{%- endmacro %}

{#- Whether a lower-cased text matches one of a list of lower-cased patterns in which '*'
    stands for any text (the KPI rules' junior roles). -#}
{% macro matches_any_pattern(text, patterns) -%}
    list_bool_or(list_transform({{ patterns }}, lambda pattern:
        {{ text }} like replace(replace(replace(pattern, '%', '\%'), '_', '\_'), '*', '%') escape '\'))
{%- endmacro %}

{#- When a Jira issue (a row of stg_jira__issues) was done: its resolution date, else (a workflow
    that sets no resolution) in a status of the done category, when its changelog last moved it
    there (jira_issue_current_status_entered_at), else its last update; null while not done. The
    changelog first: any later edit (a label, a comment, an automation) moves the last update. -#}
{% macro jira_issue_done_at(issue) -%}
    case
        when {{ issue }}.resolved_at is not null then {{ issue }}.resolved_at
        when {{ issue }}.status_category = 'done'
            then coalesce({{ jira_issue_current_status_entered_at(issue) }}, {{ issue }}.updated_at)
    end
{%- endmacro %}

{#- When the stored changelog (raw.jira__issues, as the sync completed it) last moved a Jira issue
    into its current status: the time of its last status change, when that change's target is
    the current status. A changelog names statuses, not their categories: the target is the
    current status when their ids ("to") are equal or, failing that, their names ("toString"):
    an issue moved to another project (Jira: Move; its changelog gains Key, project and
    Workflow items) has the target project's status, of the same name and another id. A
    status change that keeps the status's name (Done -> Done, the move's own status item) is
    not moving into a status, so a done item moved later keeps the time it was done. Null when
    the changelog holds no status change, or its last one led elsewhere (a changelog that does
    not match the issue). Fields are read by name: Jira's histories (created, items) and items
    (fieldId, else field; to, toString, fromString). -#}
{% macro jira_issue_current_status_entered_at(issue) -%}
    (
        select case
            when coalesce(last_change.to_status_id = (stored.payload ->> '$.fields.status.id'), false)
                or coalesce(last_change.to_status_name = (stored.payload ->> '$.fields.status.name'), false)
                then last_change.changed_at
        end
        from {{ source('raw', 'jira__issues') }} as stored,
        lateral (
            select
                timezone('UTC', try_strptime(history ->> 'created', '%Y-%m-%dT%H:%M:%S.%g%z')) as changed_at,
                item ->> 'to' as to_status_id,
                item ->> 'toString' as to_status_name
            from unnest(cast(stored.payload -> '$.changelog.histories' as json[])) with ordinality as histories (history, position),
                unnest(cast(history -> 'items' as json[])) as items (item)
            where coalesce(item ->> 'fieldId', item ->> 'field') = 'status'
                and not coalesce(lower(item ->> 'fromString') = lower(item ->> 'toString'), false)
            order by changed_at desc nulls last, position desc
            limit 1
        ) as last_change
        -- Only the issues it is read for (done, no resolution date): DuckDB runs the lateral
        -- for every stored issue the filter lets through, and unnesting every changelog took a
        -- second on the demo organisation.
        where stored.id = {{ issue }}.issue_id and stored.status_category = 'done' and stored.resolved_at is null
    )
{%- endmacro %}

{#- Whether an issue link (stg_jira__issues.issue_links) is of one of the KPI rules' link
    types, given as the type's name or the link's wording from this issue's side. -#}
{% macro link_is_one_of(link, types) -%}
    (list_contains({{ types }}, lower({{ link }}.link_type)) or list_contains({{ types }}, lower({{ link }}.relation)))
{%- endmacro %}

{#- The Jira issues whose Team field names an Atlassian team, with its id and name (issue_id,
    jira_team_id, jira_team_name). The Team field is the custom field the KPI rules name
    (tickets.team_field; ~: none, no issue names a team). Jira gives its value as {"id", "name",
    "title", "isVisible", "isVerified", "isShared", "avatarUrl"} (developer.atlassian.com, "Team
    field in Jira REST API"): a field named there that holds anything else names no team rather
    than a wrong one. -#}
{% macro jira_issue_team_fields() -%}
    select issue_id, team_field ->> 'id' as jira_team_id, team_field ->> 'name' as jira_team_name
    from (
        select issues.issue_id, issues.custom_fields[rules.ticket_team_field] as team_field
        from {{ ref('stg_jira__issues') }} as issues
        cross join {{ source('raw', 'config__kpi_rules') }} as rules
    )
    where json_exists(team_field, '$.title') and json_exists(team_field, '$.isShared')
{%- endmacro %}
