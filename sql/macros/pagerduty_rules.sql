{#- Rules of the incident KPIs shared by several models (docs/metrics.md, "Incidents"). -#}

{#- Whether a PagerDuty service is a test service: the word "test" in its name or description
    (e.g. "Checkout synthetic checks (test)"). Its incidents count in no KPI. The directory's
    services are tested on their name and description; a service the directory no longer holds
    (deleted) on the name its incidents' service reference carries. -#}
{% macro is_test_service(name, description='null') -%}
    regexp_matches(coalesce({{ name }}, '') || ' ' || coalesce({{ description }}, ''), '(?i)\btest\b')
{%- endmacro %}
