"""The dbt project in ``sql/`` as Dagster assets (dagster-dbt).

Every dbt model is an asset keyed ``[schema, name]`` (``staging/stg_pagerduty__incidents``,
``marts/mart_team_month``), in the group of its schema, described by its YAML description
(which states the grain); its dbt tests are asset checks. Sources carry the keys of the
Python assets that write them (``meta.dagster.asset_key`` in ``sql/models/_sources.yml``).

Two multi-assets run ``dbt build``, both in the warehouse pool and both on the DuckDB files the
``duckdb`` resource names (passed to dbt as ``PSAFE_WAREHOUSE`` and ``PSAFE_RESTRICTED_WAREHOUSE``,
which ``sql/profiles.yml`` attaches as ``warehouse`` and ``restricted``; the models of
``models/restricted/`` are built in the restricted file). dbt runs inside the run's process (dbt's ``dbtRunner``), not as a subprocess: the
project is parsed once per process and every build reuses that parse, so a step pays for its
models and tests, not for starting dbt; dagster-dbt turns dbt's events into the
materializations and asset checks, and each finished node is logged as it finishes:

- ``warehouse_models``: every model but the monthly marts. It first gives raw tables written
  before a typed field existed their new columns (``migrate_raw_tables``).
- ``monthly_marts``: the models of the ``replace_months`` incremental strategy
  (``marts/fct_incidents``, ``marts/mart_team_month`` and the four other monthly facts it
  reads), partitioned by month with a
  single-run backfill policy. A run over every month rebuilds them whole (``--full-refresh``);
  a run over some months passes them as the vars ``partition_start``/``partition_end`` and
  replaces exactly those months (``sql/macros/monthly_partitions.sql``).

The manifest (``sql/target/manifest.json``, gitignored), from which the assets are defined, is
made by ``dbt parse`` when it is missing or older than a file of the project, so a fresh clone
works as is; ``dagster dev`` re-parses at every load. ``python -m assets.warehouse.dbt
prepare`` makes it by hand; ``python -m assets.warehouse.dbt vars`` prints the vars to pass a
``dbt`` command run by hand in ``sql/``, the monthly marts' months among them (every month).
"""

import atexit
import functools
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_subset_selection_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.dbt_project import using_dagster_dev

from assets.models.psychometrics import SAFETY_MAX_WAVE_AGE_QUARTERS
from assets.warehouse.partitions import HISTORY_START, monthly_partitions
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import migrate_raw_tables
from assets.warehouse.resource import (
    LOCK_CONFLICT,
    WarehouseFile,
    WarehouseResource,
    ensure_restricted_file,
    waiting_for_locks,
)
from assets.warehouse.restricted import RESTRICTED_VARIABLE, resolve_restricted_path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# The dbt selection of the monthly partitioned marts: the models that replace months.
MONTHLY_MARTS = "config.incremental_strategy:replace_months"
# The frozen survey cells as today's team map attributes them: built after the survey_waves
# asset (Python) freezes tonight's cells, from the models before it, so in a step of its own.
SURVEY_ATTRIBUTION = "int_team_survey_waves"
# Unit tests check the SQL's logic on fixed rows: run by the test suite, not every night.
NOT_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]
# Stand in for the warehouse files when dbt only parses the project (it opens no database then).
_PARSE_ONLY_WAREHOUSE = "parse-only.duckdb"
_PARSE_ONLY_RESTRICTED = "parse-only.restricted.duckdb"
# The database sql/profiles.yml attaches the warehouse file as; models of the restricted file
# are in the database `restricted` (assets/warehouse/restricted.py).
WAREHOUSE_DATABASE = "warehouse"
# dbt's events that report a finished node: logged as they come, turned into Dagster events.
_NODE_RESULTS = {"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"}


def dbt_vars(**runtime: str) -> dict[str, str]:
    """The vars every dbt command gets: the SQL's rules, each defined once in Python (the history
    start in assets/warehouse/partitions.py, the carry-forward age in
    assets/models/psychometrics.py), and ``runtime`` ones (a run's months, DuckDB settings)."""
    return {"history_start": HISTORY_START, "safety_max_wave_age_quarters": SAFETY_MAX_WAVE_AGE_QUARTERS, **runtime}


@contextmanager
def warehouse_environment(warehouse: str | None, restricted: str | None = None) -> Iterator[None]:
    """``PSAFE_WAREHOUSE`` and ``PSAFE_RESTRICTED_WAREHOUSE`` set while dbt runs (sql/profiles.yml
    reads them): ``warehouse`` and ``restricted`` (default: the warehouse's restricted file, as
    the ``duckdb`` resource finds it), or stand-ins for a parse when neither they nor the
    environment name the files."""
    chosen = warehouse or os.environ.get("PSAFE_WAREHOUSE")
    values = {
        "PSAFE_WAREHOUSE": chosen or _PARSE_ONLY_WAREHOUSE,
        RESTRICTED_VARIABLE: (resolve_restricted_path(chosen, restricted) if chosen
                              else _PARSE_ONLY_RESTRICTED),
    }
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _project_files(project_dir: Path) -> Iterator[Path]:
    yield Path(__file__).with_name("partitions.py")  # HISTORY_START, one of the vars
    yield Path(__file__).parents[1] / "models" / "psychometrics.py"  # SAFETY_MAX_WAVE_AGE_QUARTERS
    for pattern in ("*.yml", "models/**/*", "macros/**/*", "tests/**/*"):
        yield from (path for path in project_dir.glob(pattern) if path.is_file())


class DbtFailed(RuntimeError):
    """A dbt command failed; the message holds dbt's errors."""


class InProcessDbt:
    """dbt run in this process (dbt's ``dbtRunner``) on a warehouse file. The project is parsed
    once, when this is made, and every command reuses that parse: a build then costs its nodes,
    not dbt's start-up. The parse starts from the project's parse cache
    (``sql/target/partial_parse.msgpack``) when there is one, so only changed files are read
    again. Artifacts and logs go to ``target``, never into the project."""

    def __init__(self, target: Path, project_dir: Path = SQL_DIR, **runtime_vars: str) -> None:
        self.project_dir, self.target = Path(project_dir), Path(target)
        self.vars = dbt_vars(**runtime_vars)
        self.target.mkdir(parents=True, exist_ok=True)
        cache = self.project_dir / "target" / "partial_parse.msgpack"
        if cache.exists() and not (self.target / cache.name).exists():
            shutil.copyfile(cache, self.target / cache.name)
        self.manifest = self.invoke(None, ["parse"]).result

    def invoke(self, warehouse: Path | str | None, args: list[str],
               callbacks: list[Callable[[Any], None]] | None = None, restricted: str | None = None,
               **runtime_vars: str):
        """``dbt <args>`` on ``warehouse`` and its restricted file (``restricted``, default as
        the ``duckdb`` resource finds it); returns dbt's result, raising ``DbtFailed`` only when
        dbt could not run the command at all (a node that fails is in the result)."""
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.cli.main import dbtRunner

        options = ["--quiet", "--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
                   "--target-path", str(self.target), "--log-path", str(self.target),
                   "--vars", json.dumps({**self.vars, **runtime_vars})]
        manifest = getattr(self, "manifest", None)
        if warehouse is not None:
            # dbt-duckdb would create a missing restricted file with the umask's mode (and fail on
            # a missing default folder): it is created private first.
            restricted = resolve_restricted_path(str(warehouse), restricted)
            ensure_restricted_file(str(warehouse), restricted)

        def run():
            with warehouse_environment(None if warehouse is None else str(warehouse), restricted):
                try:
                    result = dbtRunner(manifest=manifest, callbacks=callbacks).invoke([*args, *options])
                finally:
                    # dbt-duckdb keeps its DuckDB instance, the warehouse attached, for the rest of
                    # the process: close it, so the file is free for others when dbt is done.
                    environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
                    if environment is not None:
                        environment.close()
            # Another process holding the file (a notebook's read) stops dbt as it opens the
            # warehouse, before any node runs: wait for it as every other step does.
            if result.exception is not None and LOCK_CONFLICT in str(result.exception):
                raise duckdb.IOException(str(result.exception)) from result.exception
            return result

        result = run() if warehouse is None else waiting_for_locks(WarehouseFile(str(warehouse)), run)
        if result.exception is not None:
            raise DbtFailed(f"dbt {' '.join(args)} could not run: {result.exception}") from result.exception
        return result

    def __call__(self, warehouse: Path | str, *args: str, **runtime_vars: str):
        """``dbt <args>`` on ``warehouse`` (with ``runtime_vars``, e.g. a run's months); raises
        ``DbtFailed`` naming every node that failed."""
        result = self.invoke(warehouse, list(args), **runtime_vars)
        if not result.success:
            raise DbtFailed(f"dbt {' '.join(args)} failed: {failures(result)}")
        return result


# DuckDB's error for a table a model reads that is not built yet ("Table with name
# "intermediate.int_team_month_headcount" does not exist because schema ..."; "Table with name x
# does not exist!").
MISSING_TABLE = re.compile(r'Table with name "?([\w.]+?)"? does not exist')


def failures(result) -> str:
    """The nodes of a dbt result that errored or failed, with dbt's message; for tables a model
    reads that the warehouse lacks (a mart materialized alone on a new warehouse), what to run."""
    failed = [f"{r.node.unique_id}: {r.message}" for r in getattr(result.result, "results", None) or []
              if r.status in ("error", "fail")]
    missing = sorted({table for text in failed for table in MISSING_TABLE.findall(text)})
    hint = (f". Not built yet in this warehouse: {', '.join(missing)}. Materialize what this step reads first: "
            "on a new warehouse, run the nightly job over every month (README, Running against the real "
            "services), which builds every table; then a mart or a month alone" if missing else "")
    return ("; ".join(failed) or "see the dbt log") + hint


def prepare_manifest(project: DbtProject, *, force: bool = False) -> None:
    """``dbt parse`` into ``project.manifest_path`` when forced, when it is missing or when a file
    of the project changed since (a guard file keeps concurrent processes from parsing at once).
    The parse cache it leaves beside the manifest makes every later parse of the same project
    quick (``InProcessDbt``)."""
    manifest = project.manifest_path
    if not force and manifest.exists():
        built = manifest.stat().st_mtime
        if all(path.stat().st_mtime <= built for path in _project_files(project.project_dir)):
            return
    manifest.parent.mkdir(parents=True, exist_ok=True)
    run_with_concurrent_update_guard(manifest, lambda: InProcessDbt(project.project_dir / project.target_path, project.project_dir))


dbt_project = DbtProject(project_dir=SQL_DIR)
# `dagster dev` re-parses at every load, so edits to the models show at once.
prepare_manifest(dbt_project, force=using_dagster_dev())


@functools.cache
def process_dbt() -> InProcessDbt:
    """The one ``InProcessDbt`` of this process, on the project in sql/ (its artifacts in a
    temporary folder removed when the process ends)."""
    target = tempfile.mkdtemp(prefix="psafe-dbt-")
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    return InProcessDbt(Path(target))


@functools.cache
def _manifest_json() -> dict[str, Any]:
    return json.loads(dbt_project.manifest_path.read_text())


def relation_name(dbt_resource_props: Mapping[str, Any]) -> tuple[str, str]:
    """A model's table as the pipeline's queries name it: ``(schema, name)`` in the warehouse,
    ``(restricted, name)`` for a model of the restricted file (its schema main)."""
    database = dbt_resource_props["database"]
    return (dbt_resource_props["schema"] if database == WAREHOUSE_DATABASE else database), dbt_resource_props["name"]


class WarehouseTranslator(DagsterDbtTranslator):
    """Keys ``[schema, name]`` and groups by schema, as the warehouse's tables are named
    (``[restricted, name]`` and the group ``restricted`` for the restricted file's)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey(list(relation_name(dbt_resource_props)))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return relation_name(dbt_resource_props)[0]


translator = WarehouseTranslator()


def _duckdb_settings(duckdb: WarehouseResource) -> dict[str, str]:
    config = duckdb.connection_config or {}
    return {f"duckdb_{name}": str(config[name]) for name in ("threads", "memory_limit") if name in config}


def _selection(context: dg.AssetExecutionContext) -> list[str]:
    """The dbt selection of the models and tests this step was asked for: the multi-asset's own
    selection, or the subset a run selected (dagster-dbt's reading of the context)."""
    selection, indirect_selection = get_subset_selection_for_context(
        context=context, manifest=_manifest_json(), select=context.op.tags.get("dagster_dbt/select"),
        exclude=context.op.tags.get("dagster_dbt/exclude"), selector=None, dagster_dbt_translator=translator,
        current_dbt_indirect_selection_env=None)
    return [*selection, *(["--indirect-selection", indirect_selection] if indirect_selection else [])]


def run_dbt(context: dg.AssetExecutionContext, duckdb: WarehouseResource, args: list[str],
            **runtime_vars: str) -> Iterator:
    """``dbt <args>`` (no unit tests) on the selected models and tests, on the warehouse the
    ``duckdb`` resource names, in this process: each finished node is logged as it finishes,
    then its materialization or asset check result is yielded (dagster-dbt's reading of dbt's
    events). A node that failed fails the step, after what succeeded is recorded."""
    from dbt_common.events.functions import msg_to_dict

    results: list[dict] = []

    def on_event(event) -> None:
        if event.info.name in _NODE_RESULTS:
            results.append(msg_to_dict(event))
            context.log.info(f"dbt: {event.info.msg}")

    # dbt-duckdb opens the files itself: a damaged or unwritable one fails here, at once (and a
    # restricted file that does not exist yet is created private here, not by dbt-duckdb).
    duckdb.check()
    engine = process_dbt()
    outcome = engine.invoke(duckdb.database, [*args, *_selection(context), *NOT_UNIT_TESTS], callbacks=[on_event],
                            restricted=duckdb.restricted_path, **_duckdb_settings(duckdb), **runtime_vars)
    for raw_event in results:
        yield from DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={}).to_default_asset_events(
            manifest=_manifest_json(), dagster_dbt_translator=translator, context=context,
            target_path=engine.target)
    if not outcome.success:
        raise dg.Failure(description=f"dbt {' '.join(args)} failed: {failures(outcome)}")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=f"{MONTHLY_MARTS} {SURVEY_ATTRIBUTION}",
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name="warehouse_models",
)
def warehouse_models(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """The dbt models but the monthly marts and the survey attribution: staging, restricted,
    intermediate, dim_teams, fct_tickets."""
    with duckdb.get_connection() as conn:
        migrated = migrate_raw_tables(conn)
    if migrated:
        context.log.info(f"raw tables given their typed columns from their payloads: {', '.join(migrated)}")
    yield from run_dbt(context, duckdb, ["build"])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=SURVEY_ATTRIBUTION,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
    name="survey_attribution",
)
def survey_attribution(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """The frozen survey cells as today's team map attributes them (int_team_survey_waves),
    after the survey_waves asset: in one step with the dbt models before it, Dagster would have
    to run that step on both sides of the Python asset."""
    yield from run_dbt(context, duckdb, ["build"])


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
def monthly_marts(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """The monthly partitioned marts: a run over every month rebuilds them whole, a run over
    some months replaces exactly those months."""
    if covers_every_month(context):
        yield from run_dbt(context, duckdb, ["build", "--full-refresh"])
        return
    window = context.partition_time_window
    context.log.info(f"replacing the months {context.partition_key_range.start}..{context.partition_key_range.end}")
    yield from run_dbt(context, duckdb, ["build"], partition_start=window.start.date().isoformat(),
                       partition_end=window.end.date().isoformat())


def every_month_vars() -> dict[str, str]:
    """The vars ``partition_start``/``partition_end`` over every month, the history start
    through the current one. A dbt command run by hand on a warehouse the pipeline built needs
    months for the monthly marts (``sql/macros/monthly_partitions.sql`` stops without them):
    with these it replaces every month, as the nightly run does with ``--full-refresh``."""
    keys = monthly_partitions.get_partition_keys()
    last = monthly_partitions.time_window_for_partition_key(keys[-1])
    return {"partition_start": keys[0], "partition_end": last.end.date().isoformat()}


def main(argv: list[str] | None = None) -> int:
    command = (argv if argv is not None else sys.argv[1:]) or ["--help"]
    if command == ["prepare"]:
        prepare_manifest(dbt_project, force=True)
        print(f"dbt manifest: {dbt_project.manifest_path}")
    elif command == ["vars"]:
        print(json.dumps(dbt_vars(**every_month_vars())))
    else:
        print("usage: python -m assets.warehouse.dbt {prepare,vars}\n"
              "  prepare  parse sql/ into sql/target/manifest.json\n"
              "  vars     the --vars every dbt command in sql/ needs (the monthly marts' months: all of them)")
        return 0 if command == ["--help"] else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
