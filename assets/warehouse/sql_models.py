"""One Dagster asset per SQL model in ``sql/``.

Each file ``sql/<schema>/<name>.sql`` is a single SELECT that becomes the table
``<schema>.<name>``. Its leading comment block is the asset's description (it states the
grain); its upstream assets are the ``raw.``, ``staging.`` and ``marts.`` tables it names.
"""


import re
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_TABLE_REFERENCE = re.compile(r"\b(raw|restricted|staging|marts)\.(\w+)\b")


def model_sql(path: Path) -> tuple[str, str]:
    """Split a model file into its header comment and its SELECT."""
    lines = path.read_text().splitlines()
    header = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line[2:].strip())
    return "\n".join(header).strip(), "\n".join(lines[len(header):]).strip().rstrip(";")


def build_model(conn, schema: str, name: str, select_sql: str) -> int:
    conn.execute(f"create schema if not exists {schema}")
    conn.execute(f"create or replace table {schema}.{name} as {select_sql}")
    return conn.execute(f"select count(*) from {schema}.{name}").fetchone()[0]


def _sql_asset(path: Path) -> dg.AssetsDefinition:
    schema, name = path.parent.name, path.stem
    description, select_sql = model_sql(path)
    if not description:
        raise ValueError(f"{path} needs a header comment stating its grain")
    deps = sorted(
        {dg.AssetKey([s, t]) for s, t in _TABLE_REFERENCE.findall(select_sql)} - {dg.AssetKey([schema, name])},
        key=lambda key: key.to_user_string(),
    )

    @dg.asset(
        key=[schema, name],
        deps=deps,
        description=description,
        group_name=schema,
        compute_kind="duckdb",
        metadata={"sql_file": str(path.relative_to(SQL_DIR.parent))},
    )
    def _model(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as conn:
            rows = build_model(conn, schema, name, select_sql)
        context.log.info(f"{schema}.{name}: {rows} rows")
        return dg.MaterializeResult(metadata={"rows": rows})

    return _model


def sql_model_assets() -> list[dg.AssetsDefinition]:
    return [_sql_asset(path) for path in sorted(SQL_DIR.glob("*/*.sql"))]
