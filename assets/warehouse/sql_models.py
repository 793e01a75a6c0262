"""One Dagster asset per SQL model in ``sql/``.

Each file ``sql/<schema>/<name>.sql`` is a single SELECT that becomes the table
``<schema>.<name>``. Its leading comment block is the asset's description (it states the
grain); its upstream assets are the ``raw.``, ``staging.`` and ``marts.`` tables it names.

A header line ``Partitioned by month on <column>.`` makes the model monthly partitioned
(see ``assets/warehouse/partitions.py``): a run rebuilds only the rows whose ``<column>``
falls in the run's months, replacing them in one transaction, and a backfill of many
months is one run.

A header line ``Incremental on <column>, keyed by <key>.`` makes the model incremental:
each row derives from one row of one raw table alone (no other table, no join, no group by;
``read_model`` refuses others) and carries that row's load time in ``<column>``. A build then
derives only the rows whose source rows were loaded since the last build, and drops the rows
whose source rows are gone, so a nightly run re-parses the day's API records instead of every
payload ever loaded. The table's comment holds a fingerprint of the SELECT it was built with:
when the SQL changes, the next build is a full rebuild, as it is when the source holds a row
the table still lacks after the increment.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.warehouse.partitions import monthly_partitions
from assets.warehouse.pool import WAREHOUSE_POOL

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_TABLE_REFERENCE = re.compile(r"\b(raw|restricted|staging|marts)\.(\w+)\b")
_PARTITIONED_BY = re.compile(r"^Partitioned by month on (\w+)\.$", re.MULTILINE)
_INCREMENTAL_ON = re.compile(r"^Incremental on (\w+), keyed by (\w+)\.$", re.MULTILINE)
_JOIN_OR_AGGREGATE = re.compile(r"\b(join|group\s+by)\b", re.IGNORECASE)


class SchemaChangedError(RuntimeError):
    """A partitioned model's SELECT no longer yields the columns its table holds."""


@dataclass(frozen=True)
class SqlModel:
    schema: str
    name: str
    description: str
    select_sql: str
    partition_column: str | None
    incremental_column: str | None = None
    unique_key: str | None = None

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def upstream_keys(self) -> list[dg.AssetKey]:
        keys = {dg.AssetKey([s, t]) for s, t in _TABLE_REFERENCE.findall(self.select_sql)}
        return sorted(keys - {dg.AssetKey([self.schema, self.name])}, key=lambda key: key.to_user_string())

    @property
    def fingerprint(self) -> str:
        return "select sha256 " + hashlib.sha256(self.select_sql.encode()).hexdigest()


def read_model(path: Path) -> SqlModel:
    """Parse a model file into its header comment (the description) and its SELECT."""
    lines = path.read_text().splitlines()
    header = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line[2:].strip())
    description = "\n".join(header).strip()
    if not description:
        raise ValueError(f"{path} needs a header comment stating its grain")
    partitioned = _PARTITIONED_BY.search(description)
    incremental = _INCREMENTAL_ON.search(description)
    if partitioned and incremental:
        raise ValueError(f"{path} is either partitioned by month or incremental, not both")
    model = SqlModel(
        schema=path.parent.name,
        name=path.stem,
        description=description,
        select_sql="\n".join(lines[len(header):]).strip().rstrip(";"),
        partition_column=partitioned.group(1) if partitioned else None,
        incremental_column=incremental.group(1) if incremental else None,
        unique_key=incremental.group(2) if incremental else None,
    )
    if incremental and (len(model.upstream_keys) != 1 or model.upstream_keys[0].path[0] != "raw"
                        or _JOIN_OR_AGGREGATE.search(model.select_sql)):
        # A row that also depends on another table (a lookup, a rules table) would keep what
        # that table said when its own record was loaded.
        raise ValueError(f"{path} is incremental, so each of its rows must derive from one row of one raw "
                         f"table alone: no other table, no join, no group by")
    return model


@dataclass(frozen=True)
class ModelBuild:
    """What a build did: rebuilt the table whole (and why, when it was meant to be
    incremental), or derived some rows and removed those whose source rows were gone."""

    rows: int
    rebuilt: bool
    derived: int = 0
    removed: int = 0
    reason: str | None = None

    def describe(self, table: str) -> str:
        if self.rebuilt:
            return f"{table}: rebuilt{f' ({self.reason})' if self.reason else ''}, {_rows(self.rows)}"
        return (f"{table}: {_rows(self.derived)} derived from source rows loaded since the last build, "
                f"{self.removed:,} removed with their source rows; {_rows(self.rows)}")


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def build_model(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> ModelBuild:
    """Bring the model's table up to date: a full rebuild, or for an incremental model
    already built by the same SELECT, only the rows whose source rows changed (see the
    module's docstring)."""
    conn.execute(f"create schema if not exists {model.schema}")
    reason = None
    if model.incremental_column and _built_by(conn, model) == model.fingerprint:
        build = _refresh_incremental(conn, model)
        if build is not None:
            return build
        reason = "its source held rows loaded before the last build that the table lacked"
    conn.execute(f"create or replace table {model.table} as {model.select_sql}")
    if model.incremental_column:
        conn.execute(f"comment on table {model.table} is '{model.fingerprint}'")
    return ModelBuild(_row_count(conn, model.table), rebuilt=True, reason=reason)


def _built_by(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> str | None:
    """The fingerprint of the SELECT the model's table was built with, if it exists."""
    found = conn.execute("select comment from duckdb_tables() "
                         "where database_name = current_database() and schema_name = ? and table_name = ?",
                         [model.schema, model.name]).fetchone()
    return found[0] if found else None


def _refresh_incremental(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> ModelBuild | None:
    """In one transaction, re-derive the rows whose source rows were loaded after the table's
    newest row was, and delete the rows whose source rows no longer exist. Only the new rows'
    expressions are evaluated: the load-time filter and the key-only comparison of table and
    source reach the source table below the SELECT's projections.

    Load times grow with every write to the source while one process writes the warehouse at a
    time (the warehouse pool): each write's transaction starts, and stamps its rows, after the
    last build committed. A source row that breaks this (a clock set back, raw rows restored
    from a backup) is missing from the table after the increment: then nothing is changed and
    None is returned, for a full rebuild."""
    column, key, table = model.incremental_column, model.unique_key, model.table
    conn.execute("begin transaction")
    try:
        since = conn.execute(f"select max({column}) from {table}").fetchone()[0]
        new_rows = f"select * from ({model.select_sql})" + ("" if since is None else f" where {column} > $since")
        parameters = {} if since is None else {"since": since}
        conn.execute(f"delete from {table} where {key} in (select {key} from ({new_rows}))", parameters)
        derived = conn.execute(f"insert into {table} {new_rows}", parameters).fetchone()[0]
        missing, gone = conn.execute(f"""
            select count(*) filter (where built.{key} is null), count(*) filter (where source.{key} is null)
            from {table} as built
            full outer join (select {key} from ({model.select_sql})) as source on built.{key} = source.{key}
        """).fetchone()
        if missing:
            conn.execute("rollback")
            return None
        removed = 0
        if gone:
            removed = conn.execute(
                f"delete from {table} where {key} not in (select {key} from ({model.select_sql}))"
            ).fetchone()[0]
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return ModelBuild(_row_count(conn, table), rebuilt=False, derived=derived, removed=removed)


def _row_count(conn: duckdb.DuckDBPyConnection, relation: str) -> int:
    return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def refresh_months(conn: duckdb.DuckDBPyConnection, model: SqlModel, start: date, end: date) -> int:
    """Replace the rows of ``model`` whose partition column is in ``[start, end)`` with what
    its SELECT yields for those months, in one transaction; return how many it wrote."""
    column = model.partition_column
    window = f"select * from ({model.select_sql}) where {column} >= $start and {column} < $end"
    conn.execute(f"create schema if not exists {model.schema}")
    selected = conn.execute(f"describe {model.select_sql}").fetchall()
    existing = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [model.schema, model.name],
    ).fetchall()
    if existing and [tuple(c[:2]) for c in selected] != [tuple(c) for c in existing]:
        raise SchemaChangedError(
            f"the columns of {model.table} changed since its partitions were built; rebuild every "
            f"partition in one run (a backfill of all partitions) so no month keeps the old columns"
        )
    conn.execute("begin transaction")
    try:
        if not existing:
            conn.execute(f"create table {model.table} as select * from ({model.select_sql}) where false")
        conn.execute(f"delete from {model.table} where {column} >= $start and {column} < $end",
                     {"start": start, "end": end})
        conn.execute(f"insert into {model.table} {window}", {"start": start, "end": end})
        written = conn.execute(f"select count(*) from {model.table} where {column} >= $start and {column} < $end",
                               {"start": start, "end": end}).fetchone()[0]
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return written


def _covers_every_partition(context: dg.AssetExecutionContext) -> bool:
    keys = monthly_partitions.get_partition_keys(dynamic_partitions_store=context.instance)
    return context.partition_key_range == dg.PartitionKeyRange(keys[0], keys[-1])


def _sql_asset(path: Path, sql_dir: Path) -> dg.AssetsDefinition:
    model = read_model(path)
    partitioned = model.partition_column is not None

    @dg.asset(
        pool=WAREHOUSE_POOL,
        key=[model.schema, model.name],
        deps=model.upstream_keys,
        description=model.description,
        group_name=model.schema,
        kinds={"duckdb", "sql"},
        metadata={"sql_file": str(path.relative_to(sql_dir.parent))},
        partitions_def=monthly_partitions if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
    )
    def _model(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        metadata = {}
        with duckdb.get_connection() as conn:
            if partitioned and not _covers_every_partition(context):
                window = context.partition_time_window
                rows = refresh_months(conn, model, window.start.date(), window.end.date())
                context.log.info(f"{model.table}: {rows} rows for {context.partition_key_range.start}.."
                                 f"{context.partition_key_range.end}")
            else:
                build = build_model(conn, model)
                context.log.info(build.describe(model.table))
                rows = build.rows
                if model.incremental_column:
                    metadata = {"rebuilt": build.rebuilt, "rows derived": build.derived, "rows removed": build.removed}
        return dg.MaterializeResult(metadata={"rows": rows, **metadata})

    return _model


def sql_model_assets(sql_dir: Path = SQL_DIR) -> list[dg.AssetsDefinition]:
    """An asset per ``<sql_dir>/<schema>/<name>.sql``."""
    return [_sql_asset(path, sql_dir) for path in sorted(sql_dir.glob("*/*.sql"))]
