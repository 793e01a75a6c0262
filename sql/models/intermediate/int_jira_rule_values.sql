-- Every value the rules files compare with a Jira issue (the issue types, labels and projects of
-- each ticket classification rule and of the KPI rules' post-incident reviews), with how many
-- stored issues have it, compared as the models compare them (macro jira_issue_has). A
-- selector is the set of values of which one must match for the rule to select an issue: one
-- condition of a classification rule, the reviews' issue types and labels together, or their
-- projects. rule_issues: the stored issues the whole rule selects, its conditions together (a
-- type used only in other projects than the rule's selects none). The check
-- jira_rules_match_issues names the rules selecting nothing and the values matching nothing.
with classification as (
    select * from {{ source('raw', 'config__ticket_classification') }}
),

kpi_rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

issues as (
    select * from {{ ref('stg_jira__issues') }}
),

classification_selects as (
    select rules.rule_order, count(issues.issue_id) as rule_issues
    from classification as rules
    left join issues on {{ jira_classification_rule_selects('rules', 'issues') }}
    group by rules.rule_order
),

reviews_select as (
    select count(issues.issue_id) as rule_issues
    from kpi_rules as rules
    left join issues on {{ jira_review_rule_selects('rules', 'issues') }}
),

rule_values as (
    select 'ticket_classification' as rules, rule_order, ticket_class, 'issue_types' as condition,
           'rule ' || rule_order || ' issue_types' as selector, unnest(issue_types) as value
    from classification
    union all
    select 'ticket_classification', rule_order, ticket_class, 'labels', 'rule ' || rule_order || ' labels', unnest(labels)
    from classification
    union all
    select 'ticket_classification', rule_order, ticket_class, 'projects', 'rule ' || rule_order || ' projects',
           unnest(projects)
    from classification
    union all
    select 'kpi_rules', null, null, 'issue_types', 'review_issue_types or review_labels', unnest(review_issue_types)
    from kpi_rules
    union all
    select 'kpi_rules', null, null, 'labels', 'review_issue_types or review_labels', unnest(review_labels)
    from kpi_rules
    union all
    select 'kpi_rules', null, null, 'projects', 'review_projects', unnest(review_projects)
    from kpi_rules
)

select
    rule_values.rules,
    rule_values.rule_order,
    rule_values.ticket_class,
    rule_values.selector,
    rule_values.condition,
    rule_values.value,
    count(issues.issue_id) as issues,
    any_value(coalesce(classification_selects.rule_issues, reviews_select.rule_issues)) as rule_issues
from rule_values
left join issues
    on case rule_values.condition
        when 'issue_types' then {{ jira_issue_has('issue_types', '[rule_values.value]', 'issues') }}
        when 'labels' then {{ jira_issue_has('labels', '[rule_values.value]', 'issues') }}
        else {{ jira_issue_has('projects', '[rule_values.value]', 'issues') }}
    end
left join classification_selects
    on rule_values.rules = 'ticket_classification' and classification_selects.rule_order = rule_values.rule_order
left join reviews_select on rule_values.rules = 'kpi_rules'
group by rule_values.rules, rule_values.rule_order, rule_values.ticket_class, rule_values.selector,
    rule_values.condition, rule_values.value
