{#- Incremental staging of API records (README, "Incremental staging").

    A staging model that derives each row from one raw record alone configures
        materialized='incremental', incremental_strategy='delete+insert', unique_key=<key>,
        rebuild_when_sql_changes=true,
        post_hook=["{{ remove_rows_of_gone_records('<raw table>', '<key>') }}", "{{ record_sql_fingerprint() }}"]
    and filters its records with records_to_derive(). A build then derives the records whose
    load time differs from the one their row carries (new, re-written, or missing from the
    table whatever their stamp) and deletes the rows whose records are gone, in one
    transaction: dbt-duckdb runs the delete+insert and the post-hooks between BEGIN and
    COMMIT, so a failed build leaves the table as it was. -#}

{% macro records_to_derive(source_alias, key) -%}
    not exists (
        select 1 from {{ this }} as built
        where built.{{ key }} = {{ source_alias }}.id and built.loaded_at = {{ source_alias }}.loaded_at
    )
{%- endmacro %}

{#- The build has just given every raw record its row (one row per record, the staging grain),
    so the table holds rows of gone records only when its row count differs from the raw
    table's record count (it can then only be larger): the key-only comparison (1 s for the
    6.4M log entries at 100x) runs only then. -#}
{% macro remove_rows_of_gone_records(raw_table, key) -%}
    {%- set raw = source('raw', raw_table) -%}
    {%- if execute and run_query("select (select count(*) from " ~ this ~ ") <> (select count(*) from " ~ raw ~ ")")
                       .columns[0].values()[0] -%}
    delete from {{ this }} where {{ key }} not in (select id from {{ raw }})
    {%- endif -%}
{%- endmacro %}

{#- The table's comment names the model file it was built from (dbt's checksum of the file):
    an incremental model whose SQL changed since is rebuilt whole, since its old rows were
    derived by the old SQL. -#}
{% macro sql_fingerprint() -%}
    dbt model sha256 {{ model.checksum.checksum }}
{%- endmacro %}

{% macro record_sql_fingerprint() -%}
    comment on table {{ this }} is '{{ sql_fingerprint() }}'
{%- endmacro %}

{% macro built_from_other_sql() %}
    {%- set found = run_query(
        "select comment from duckdb_tables() where database_name = '" ~ this.database ~ "' and schema_name = '"
        ~ this.schema ~ "' and table_name = '" ~ this.identifier ~ "'") -%}
    {{ return(found.rows | length > 0 and found.rows[0][0] != sql_fingerprint()) }}
{% endmacro %}

{#- dbt's should_full_refresh (--full-refresh, or the model's full_refresh config), plus:
    a model configured with rebuild_when_sql_changes whose table was built by other SQL. -#}
{% macro should_full_refresh() %}
    {%- set full_refresh = config.get('full_refresh') -%}
    {%- if full_refresh is none -%}
        {%- set full_refresh = flags.FULL_REFRESH -%}
    {%- endif -%}
    {%- if not full_refresh and execute and config.get('rebuild_when_sql_changes', false) -%}
        {%- set full_refresh = built_from_other_sql() -%}
    {%- endif -%}
    {{ return(full_refresh) }}
{% endmacro %}
