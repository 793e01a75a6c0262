{#- How the rules files (ticket classification, post-incident reviews of the KPI rules) compare
    a Jira issue (a row of stg_jira__issues) with a list of lower-cased rule values: the one
    place fct_tickets, int_post_incident_reviews and int_jira_rule_values take it from.
    issue_types: the type's name in any case, or its id (Jira translates its own types' names
    into the language of the account the sync reads with; the id is the same in every
    language); labels: any of the issue's labels, in any case; projects: the project key, in
    any case. -#}
{% macro jira_issue_has(condition, values, issue) -%}
    {%- if condition == 'issue_types' -%}
        (list_contains({{ values }}, lower({{ issue }}.issue_type)) or list_contains({{ values }}, {{ issue }}.issue_type_id))
    {%- elif condition == 'labels' -%}
        coalesce(list_has_any({{ values }}, list_transform({{ issue }}.labels, lambda label: lower(label))), false)
    {%- elif condition == 'projects' -%}
        list_contains({{ values }}, lower({{ issue }}.project_key))
    {%- else -%}
        {{ exceptions.raise_compiler_error("jira_issue_has: no condition " ~ condition) }}
    {%- endif -%}
{%- endmacro %}


{#- Whether a ticket classification rule (a row of raw.config__ticket_classification) selects an
    issue: every condition it sets holds (an empty list sets none). fct_tickets classifies by it,
    int_jira_rule_values counts by it. -#}
{% macro jira_classification_rule_selects(rule, issue) -%}
    (len({{ rule }}.issue_types) = 0 or {{ jira_issue_has('issue_types', rule ~ '.issue_types', issue) }})
    and (len({{ rule }}.labels) = 0 or {{ jira_issue_has('labels', rule ~ '.labels', issue) }})
    and (len({{ rule }}.projects) = 0 or {{ jira_issue_has('projects', rule ~ '.projects', issue) }})
{%- endmacro %}

{#- Whether the KPI rules (a row of raw.config__kpi_rules) call an issue a post-incident review:
    one of their issue types or labels, within their projects when they name any.
    int_post_incident_reviews selects by it, int_jira_rule_values counts by it. -#}
{% macro jira_review_rule_selects(rules, issue) -%}
    ({{ jira_issue_has('issue_types', rules ~ '.review_issue_types', issue) }}
     or {{ jira_issue_has('labels', rules ~ '.review_labels', issue) }})
    and (len({{ rules }}.review_projects) = 0 or {{ jira_issue_has('projects', rules ~ '.review_projects', issue) }})
{%- endmacro %}
