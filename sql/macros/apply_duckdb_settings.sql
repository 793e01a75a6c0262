{#- Run at the start of every dbt invocation (on-run-start): DuckDB's threads and memory
    limit when the caller passes them as vars, so dbt obeys the same settings as the
    pipeline's duckdb resource (and the benchmark's limits). Settings are per database
    instance, and dbt-duckdb keeps one instance for the whole invocation. -#}
{% macro apply_duckdb_settings() %}
    {%- set settings = [] -%}
    {%- if var('duckdb_threads', none) is not none -%}
        {%- do settings.append("set threads = " ~ (var('duckdb_threads') | int)) -%}
    {%- endif -%}
    {%- if var('duckdb_memory_limit', none) is not none -%}
        {%- do settings.append("set memory_limit = '" ~ var('duckdb_memory_limit') ~ "'") -%}
    {%- endif -%}
    {{ settings | join('; ') }}
{% endmacro %}
