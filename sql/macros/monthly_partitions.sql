{#- Monthly partitioned marts (README, "Monthly partitions and backfills").

    A partitioned model configures
        materialized='incremental', incremental_strategy='replace_months', partition_column=<column>
    and ends with {{ in_partition_window(<column>) }}. Dagster passes the run's months as the vars
    partition_start (first day of the first month) and partition_end (first day after the
    last); a run over every month passes --full-refresh instead and rebuilds the table whole.
    The replace_months strategy deletes the window's rows and inserts what the model now
    yields for it, in one transaction, and refuses to mix old and new columns. -#}

{% macro in_partition_window(column) -%}
    {%- if is_incremental() -%}
        {%- if var('partition_start', none) is none or var('partition_end', none) is none -%}
            {{ exceptions.raise_compiler_error(this ~ " is partitioned by month: pass the months to rebuild as "
               ~ "--vars '{partition_start: YYYY-MM-01, partition_end: YYYY-MM-01}', or --full-refresh to rebuild "
               ~ "every month") }}
        {%- endif -%}
        where {{ column }} >= '{{ var("partition_start") }}'::date and {{ column }} < '{{ var("partition_end") }}'::date
    {%- endif -%}
{%- endmacro %}

{% macro get_incremental_replace_months_sql(arg_dict) %}
    {%- set target, incoming = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set column = config.require('partition_column') -%}
    {%- set built = adapter.get_columns_in_relation(target) | map(attribute='column') | list -%}
    {%- set built_types = adapter.get_columns_in_relation(target) | map(attribute='dtype') | list -%}
    {%- set now = adapter.get_columns_in_relation(incoming) | map(attribute='column') | list -%}
    {%- set now_types = adapter.get_columns_in_relation(incoming) | map(attribute='dtype') | list -%}
    {%- if built != now or built_types != now_types -%}
        {{ exceptions.raise_compiler_error(
            "the columns of " ~ target ~ " changed since its partitions were built; rebuild every partition in "
            ~ "one run (a backfill of all partitions) so no month keeps the old columns") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(built) -%}
    delete from {{ target }}
    where {{ column }} >= '{{ var("partition_start") }}'::date and {{ column }} < '{{ var("partition_end") }}'::date;
    insert into {{ target }} ({{ columns }}) select {{ columns }} from {{ incoming }}
{% endmacro %}
