"""One timed pipeline stage over a prepared warehouse, run in its own process so its peak
memory is its own (not the generator's, not an earlier stage's).

    python -m benchmarks.stages {staging,marts,models,pandas,polars} WAREHOUSE [--threads 2] [--memory-limit 3GB]
                                [--full-refresh]

Prints one JSON line: the stage's wall time and CPU time (the work, after imports and dbt's
parse of the project), each step's wall time, the process's peak resident memory (``VmHWM``:
imports included), the machine's load average at the end (other processes slow the wall
time) and the rows made; ``setup_seconds``: the imports and dbt's parse before the work.

- staging, marts, models: every asset of those groups (staging includes the ``restricted``
  and ``intermediate`` models), in dependency order. dbt models run with dbt in this process
  (``InProcessDbt``: ``dbt run`` of the consecutive dbt models, with the DuckDB threads and
  memory limit given); ``--full-refresh`` rebuilds incremental models whole (the first build;
  the monthly marts are always rebuilt whole, as the nightly run does over every month).
  Python assets (``assets.models``, e.g. the survey waves in marts) are invoked directly with
  a DuckDB resource on the warehouse.
- pandas, polars: the baselines of the team-month mart (``benchmarks.pandas_baseline``,
  ``benchmarks.polars_baseline``), written to ``--output`` as Parquet for the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PIPELINE_STAGES = ("staging", "marts", "models")
STAGE_GROUPS = {"staging": ("staging", "restricted", "intermediate"), "marts": ("marts",), "models": ("models",)}
BASELINES = ("pandas", "polars")
STAGES = (*PIPELINE_STAGES, *BASELINES)


def in_dependency_order(groups: tuple[str, ...]) -> list:
    """The groups' assets, one spec per dbt model (from the dbt multi-assets) or per Python
    asset of ``assets.models``, each after the assets of the groups it depends on."""
    # Dagster is imported here, not at the top, so a baseline's memory figure is its own.
    import dagster as dg

    from assets import models
    from assets.warehouse.dbt import monthly_marts, survey_attribution, warehouse_models

    dbt_models = [warehouse_models, survey_attribution, monthly_marts]
    python_assets = dg.load_assets_from_package_module(models)
    specs = {spec.key: (spec, None) for assets in dbt_models for spec in assets.specs}
    specs |= {next(iter(a.specs)).key: (next(iter(a.specs)), a) for a in python_assets}
    # A model of the staging groups that reads a mart (the survey attribution) runs with the marts.
    group = {key: spec.group_name for key, (spec, _) in specs.items()}
    reads_a_mart = {key for key, (spec, _) in specs.items() if group[key] in STAGE_GROUPS["staging"]
                    and any(group.get(d.asset_key) == "marts" for d in spec.deps)}
    in_stage = {key for key in specs
                if ("marts" in groups if key in reads_a_mart else group[key] in groups)}
    pending = {key: {d.asset_key for d in spec.deps} for key, (spec, _) in specs.items() if key in in_stage}
    if not pending:
        raise SystemExit(f"no assets in groups {groups}")
    ordered = []
    while pending:
        ready = sorted((key for key, deps in pending.items() if not deps & pending.keys()),
                       key=lambda key: key.to_user_string())
        if not ready:
            raise SystemExit(f"dependency cycle among {sorted(k.to_user_string() for k in pending)}")
        ordered += [specs[key] for key in ready]
        for key in ready:
            del pending[key]
    return ordered


def _run_assets(ordered: list, warehouse: str, threads: int, memory_limit: str, full_refresh: bool,
                dbt) -> tuple[dict, dict]:
    """Run each consecutive stretch of dbt models as one ``dbt run`` (the monthly marts over
    every month), then each Python asset invoked directly with a DuckDB resource on the
    warehouse. Rows: of every table an asset writes."""
    import dagster as dg

    from assets.warehouse.resource import WarehouseResource
    from assets.warehouse.restricted import read_only_connection

    resource_ = WarehouseResource(database=warehouse, connection_config={"threads": threads,
                                                                         "memory_limit": memory_limit})
    seconds, keys = {}, []
    batches: list[tuple[list, object]] = []
    for spec, python_asset in ordered:
        if python_asset is None and batches and batches[-1][1] is None:
            batches[-1][0].append(spec)
        else:
            batches.append(([spec], python_asset))
    for specs, python_asset in batches:
        started = time.monotonic()
        if python_asset is None:
            # --full-refresh rebuilds incremental models whole (tables are rebuilt anyway).
            rebuild = full_refresh or any(spec.partitions_def is not None for spec in specs)
            results = dbt(warehouse, "run", *(["--full-refresh"] if rebuild else []), "--select",
                          *(spec.key.path[-1] for spec in specs)).result.results
            seconds |= {f"{r.node.schema}/{r.node.name}": r.execution_time for r in results}
        else:
            outputs = python_asset(context=dg.build_asset_context(), duckdb=resource_)
            if isinstance(outputs, Iterator):
                list(outputs)
            seconds[specs[0].key.to_user_string()] = time.monotonic() - started
        keys += [spec.key for spec in specs] if python_asset is None else sorted(
            python_asset.keys, key=lambda key: key.to_user_string())
    with read_only_connection(warehouse) as conn:
        rows = {key.to_user_string(): conn.sql(f"select count(*) from {'.'.join(key.path)}").fetchone()[0]
                for key in keys}
    return rows, seconds


def _baseline(stage: str, warehouse: str, output: Path) -> dict[str, int]:
    from assets.warehouse.restricted import read_only_connection
    from benchmarks import pandas_baseline, polars_baseline

    baseline = {"pandas": pandas_baseline, "polars": polars_baseline}[stage]
    with read_only_connection(warehouse) as conn:
        mart = baseline.team_month_mart(conn)
    mart.to_parquet(output)
    return {f"{stage}/mart_team_month": len(mart)}


def run(stage: str, warehouse: str, threads: int, memory_limit: str, output: Path | None,
        full_refresh: bool = False) -> dict:
    setup_started = time.monotonic()
    if stage in BASELINES:
        started, cpu_started = time.monotonic(), _cpu_seconds()
        rows, steps = _baseline(stage, warehouse, output), {}
    else:
        import tempfile

        from assets.warehouse.dbt import InProcessDbt

        ordered = in_dependency_order(STAGE_GROUPS[stage])
        with tempfile.TemporaryDirectory(prefix="psafe-bench-dbt-") as target:
            dbt = InProcessDbt(Path(target), duckdb_threads=str(threads), duckdb_memory_limit=memory_limit)
            started, cpu_started = time.monotonic(), _cpu_seconds()
            rows, steps = _run_assets(ordered, warehouse, threads, memory_limit, full_refresh, dbt)
    seconds, cpu_seconds = time.monotonic() - started, _cpu_seconds() - cpu_started
    return {"stage": stage, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_bytes": peak_rss_bytes(),
            "setup_seconds": started - setup_started, "load_average": os.getloadavg()[0], "rows": rows,
            "step_seconds": steps}


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads): unlike wall time, it barely moves when
    other processes compete for the cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes() -> int:
    """This process's peak resident memory. Linux's ``VmHWM`` belongs to the address space
    that ``exec`` made; ``getrusage``'s ``ru_maxrss`` survives ``exec`` and so would report
    the parent's peak (the generator's) for a freshly started stage."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--output", type=Path, help="where a baseline writes its mart (Parquet)")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models whole (a first build)")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        parser.error(f"no warehouse at {args.warehouse}")
    if args.stage in BASELINES and args.output is None:
        parser.error(f"the {args.stage} stage needs --output")
    print(json.dumps(run(args.stage, str(args.warehouse), args.threads, args.memory_limit, args.output,
                         args.full_refresh)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
