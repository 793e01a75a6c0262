"""The dbt project in ``sql/`` as Dagster assets (dagster-dbt).

Every dbt model is an asset keyed ``[schema, name]`` (``staging/stg_pagerduty__incidents``,
``marts/mart_team_month``), in the group of its schema, described by its YAML description
(which states the grain); its dbt tests are asset checks. Sources carry the keys of the
Python assets that write them (``meta.dagster.asset_key`` in ``sql/models/_sources.yml``).

Two multi-assets run ``dbt build``, both in the warehouse pool and both opening the DuckDB
file the ``duckdb`` resource names (passed to dbt as ``PSAFE_WAREHOUSE``, which
``sql/profiles.yml`` reads):

- ``warehouse_models``: every model but the monthly marts. It first gives raw tables written
  before a typed field existed their new columns (``migrate_raw_tables``).
- ``monthly_marts``: the models of the ``replace_months`` incremental strategy
  (``marts/fct_incidents``, ``marts/mart_team_month``), partitioned by month with a
  single-run backfill policy. A run over every month rebuilds them whole (``--full-refresh``);
  a run over some months passes them as the vars ``partition_start``/``partition_end`` and
  replaces exactly those months (``sql/macros/monthly_partitions.sql``).

The manifest (``sql/target/manifest.json``, gitignored) is made by ``dbt parse`` when it is
missing or older than a file of the project, so a fresh clone works as is; ``dagster dev``
re-parses at every load. ``python -m assets.warehouse.dbt
prepare`` makes it by hand; ``python -m assets.warehouse.dbt vars`` prints the vars to pass a
``dbt`` command run by hand in ``sql/``.
"""

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.dbt_project import using_dagster_dev
from dagster_duckdb import DuckDBResource

from assets.models.psychometrics import SAFETY_MAX_WAVE_AGE_QUARTERS
from assets.warehouse.partitions import HISTORY_START, monthly_partitions
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import migrate_raw_tables

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# The dbt selection of the monthly partitioned marts: the models that replace months.
MONTHLY_MARTS = "config.incremental_strategy:replace_months"
# The team map, which the landing assets read to check exports against: its own step, so
# the landing assets run between it and the models that read them.
TEAM_MAP = "stg_config__team_map"
# Unit tests check the SQL's logic on fixed rows: run by the test suite, not every night.
NOT_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]
# Stands in for the warehouse when dbt only parses the project (it opens no database then).
_PARSE_ONLY_WAREHOUSE = "parse-only.duckdb"


def dbt_vars(**runtime: str) -> dict[str, str]:
    """The vars every dbt command gets: the SQL's rules, each defined once in Python (the history
    start in assets/warehouse/partitions.py, the carry-forward age in
    assets/models/psychometrics.py), and ``runtime`` ones (a run's months, DuckDB settings)."""
    return {"history_start": HISTORY_START, "safety_max_wave_age_quarters": SAFETY_MAX_WAVE_AGE_QUARTERS, **runtime}


@contextmanager
def warehouse_environment(warehouse: str | None) -> Iterator[None]:
    """``PSAFE_WAREHOUSE`` set to ``warehouse`` while dbt starts (it copies the environment),
    or to a stand-in for a parse when neither it nor the environment names one."""
    previous = os.environ.get("PSAFE_WAREHOUSE")
    os.environ["PSAFE_WAREHOUSE"] = warehouse or previous or _PARSE_ONLY_WAREHOUSE
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PSAFE_WAREHOUSE"]
        else:
            os.environ["PSAFE_WAREHOUSE"] = previous


def _project_files(project_dir: Path) -> Iterator[Path]:
    yield Path(__file__).with_name("partitions.py")  # HISTORY_START, one of the vars
    yield Path(__file__).parents[1] / "models" / "psychometrics.py"  # SAFETY_MAX_WAVE_AGE_QUARTERS
    for pattern in ("*.yml", "models/**/*", "macros/**/*", "tests/**/*"):
        yield from (path for path in project_dir.glob(pattern) if path.is_file())


def prepare_manifest(project: DbtProject, *, force: bool = False) -> None:
    """``dbt parse`` into ``project.manifest_path`` when forced, when it is missing or when a file
    of the project changed since (a guard file keeps concurrent processes from parsing at once)."""
    manifest = project.manifest_path
    if not force and manifest.exists():
        built = manifest.stat().st_mtime
        if all(path.stat().st_mtime <= built for path in _project_files(project.project_dir)):
            return

    def parse() -> None:
        with warehouse_environment(None):
            dbt_resource(project).cli(["parse", "--quiet", "--vars", json.dumps(dbt_vars())],
                                      target_path=project.target_path).wait()

    manifest.parent.mkdir(parents=True, exist_ok=True)
    run_with_concurrent_update_guard(manifest, parse)


def dbt_resource(project: DbtProject | None = None) -> DbtCliResource:
    """dbt of this environment (beside its Python, so a venv needs no activation) on the project."""
    beside_python = Path(sys.executable).with_name("dbt")
    return DbtCliResource(project_dir=project or dbt_project,
                          dbt_executable=str(beside_python) if beside_python.exists() else "dbt")


dbt_project = DbtProject(project_dir=SQL_DIR)
# `dagster dev` re-parses at every load, so edits to the models show at once.
prepare_manifest(dbt_project, force=using_dagster_dev())


class WarehouseTranslator(DagsterDbtTranslator):
    """Keys ``[schema, name]`` and groups by schema, as the warehouse's tables are named."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["schema"]


def _duckdb_settings(duckdb: DuckDBResource) -> dict[str, str]:
    config = duckdb.connection_config or {}
    return {f"duckdb_{name}": str(config[name]) for name in ("threads", "memory_limit") if name in config}


def run_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource, args: list[str],
            **runtime_vars: str) -> Iterator:
    """``dbt <args>`` on the warehouse the ``duckdb`` resource names, streaming its events; its
    artifacts and logs go to a temporary folder, removed afterwards."""
    variables = dbt_vars(**_duckdb_settings(duckdb), **runtime_vars)
    with tempfile.TemporaryDirectory(prefix="psafe-dbt-") as target:
        with warehouse_environment(duckdb.database):
            invocation = dbt.cli([*args, *NOT_UNIT_TESTS, "--vars", json.dumps(variables)], context=context,
                                 target_path=Path(target))
        yield from invocation.stream()
        if variables == dbt_vars():
            _keep_parse_cache(Path(target), Path(dbt.project_dir) / "target")


def _keep_parse_cache(run_target: Path, project_target: Path) -> None:
    """Keep the run's parse cache (dbt's partial_parse.msgpack) for the next runs: it holds the
    warehouse's path, which a parse without it (the manifest's) lacks, and a cache made for
    other settings makes dbt parse the whole project again."""
    cache = run_target / "partial_parse.msgpack"
    if cache.exists():
        kept = project_target / f".{cache.name}.{os.getpid()}"
        shutil.copyfile(cache, kept)
        os.replace(kept, project_target / cache.name)


class DbtFailed(RuntimeError):
    """A dbt command run in this process failed; the message holds dbt's errors."""


class InProcessDbt:
    """dbt run in this process on a warehouse file, for scripts and tests (the assets run it
    through dagster-dbt): the project is parsed once, then each command reuses the parse.
    Artifacts and logs go to ``target``, never into the project."""

    def __init__(self, target: Path, project_dir: Path = SQL_DIR, **runtime_vars: str) -> None:
        self.project_dir, self.target = project_dir, target
        self.vars = dbt_vars(**runtime_vars)
        self.manifest = self._invoke(["parse"], manifest=None).result

    def _invoke(self, args: list[str], manifest, warehouse: str | None = None, **runtime_vars: str):
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.cli.main import dbtRunner

        options = ["--quiet", "--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
                   "--target-path", str(self.target), "--log-path", str(self.target),
                   "--vars", json.dumps({**self.vars, **runtime_vars})]
        with warehouse_environment(warehouse):
            try:
                result = dbtRunner(manifest=manifest).invoke([*args, *options])
            finally:
                # dbt-duckdb keeps its DuckDB instance, the warehouse attached, for the rest of
                # the process: close it, so the file is free for others when dbt is done.
                environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
                if environment is not None:
                    environment.close()
        if not result.success:
            failures = [f"{r.node.unique_id}: {r.message}" for r in getattr(result.result, "results", None) or []
                        if r.status in ("error", "fail")]
            raise DbtFailed(f"dbt {' '.join(args)} failed: " + ("; ".join(failures) or str(result.exception)))
        return result

    def __call__(self, warehouse: Path | str, *args: str, **runtime_vars: str):
        """``dbt <args>`` on ``warehouse`` (with ``runtime_vars``, e.g. a run's months); raises
        ``DbtFailed`` naming what failed."""
        return self._invoke(list(args), self.manifest, str(warehouse), **runtime_vars)


translator = WarehouseTranslator()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=TEAM_MAP,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name="team_map_model",
)
def team_map_model(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    """The team map's staging model, which the landing assets check exports against."""
    yield from run_dbt(context, dbt, duckdb, ["build"])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=f"{MONTHLY_MARTS} {TEAM_MAP}",
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name="warehouse_models",
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    """The dbt models but the team map and the monthly marts: staging, restricted,
    intermediate, dim_teams, fct_tickets."""
    with duckdb.get_connection() as conn:
        migrated = migrate_raw_tables(conn)
    if migrated:
        context.log.info(f"raw tables given their typed columns from their payloads: {', '.join(migrated)}")
    yield from run_dbt(context, dbt, duckdb, ["build"])


def covers_every_month(context: dg.AssetExecutionContext) -> bool:
    keys = monthly_partitions.get_partition_keys(dynamic_partitions_store=context.instance)
    return context.partition_key_range == dg.PartitionKeyRange(keys[0], keys[-1])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=MONTHLY_MARTS,
    dagster_dbt_translator=translator,
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    name="monthly_marts",
)
def monthly_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    """The monthly partitioned marts: a run over every month rebuilds them whole, a run over
    some months replaces exactly those months."""
    if covers_every_month(context):
        yield from run_dbt(context, dbt, duckdb, ["build", "--full-refresh"])
        return
    window = context.partition_time_window
    context.log.info(f"replacing the months {context.partition_key_range.start}..{context.partition_key_range.end}")
    yield from run_dbt(context, dbt, duckdb, ["build"], partition_start=window.start.date().isoformat(),
                       partition_end=window.end.date().isoformat())


def main(argv: list[str] | None = None) -> int:
    command = (argv if argv is not None else sys.argv[1:]) or ["--help"]
    if command == ["prepare"]:
        prepare_manifest(dbt_project, force=True)
        print(f"dbt manifest: {dbt_project.manifest_path}")
    elif command == ["vars"]:
        print(json.dumps(dbt_vars()))
    else:
        print("usage: python -m assets.warehouse.dbt {prepare,vars}\n"
              "  prepare  parse sql/ into sql/target/manifest.json\n"
              "  vars     the --vars every dbt command in sql/ needs")
        return 0 if command == ["--help"] else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
