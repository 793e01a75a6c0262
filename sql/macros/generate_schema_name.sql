{#- A model's table lives in the schema its folder configures (+schema in dbt_project.yml),
    named as is: staging.stg_pagerduty__incidents, not dbt's default <target schema>_staging.
    The GX suites, the models, the report and the notebooks read those names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is not none -%}
        {{ custom_schema_name | trim }}
    {%- elif node.resource_type == 'model' -%}
        {{ exceptions.raise_compiler_error(node.original_file_path ~ " is in no schema folder; put it under "
                                           "models/staging, restricted, intermediate or marts") }}
    {%- else -%}
        {{ target.schema }}
    {%- endif -%}
{%- endmacro %}
