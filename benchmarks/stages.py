"""One timed pipeline stage over a prepared warehouse, run in its own process so its peak
memory is its own (not the generator's, not an earlier stage's).

    python -m benchmarks.stages {staging,marts,models,pandas} WAREHOUSE [--threads 2] [--memory-limit 3GB]

Prints one JSON line: the stage's wall time and CPU time (the work, after imports), each
step's wall time, the process's peak resident memory (``VmHWM``: imports included), the
machine's load average at the end (other processes slow the wall time) and the rows made.

- staging, marts, models: every asset of those groups (staging includes the ``restricted``
  survey staging model), in dependency order. SQL models (``sql/<schema>/*.sql``) are built
  with the factory's own ``build_model`` (what each asset runs, without Dagster's per-run
  overhead of a few seconds); Python assets (``assets.models``, e.g. the survey waves in
  marts) are invoked directly with a DuckDB resource on the warehouse.
- pandas: the pandas baseline of the team-month mart (``benchmarks.pandas_baseline``),
  written to ``--output`` as Parquet for the comparison.
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

import duckdb

from benchmarks.pandas_baseline import team_month_mart

PIPELINE_STAGES = ("staging", "marts", "models")
STAGE_GROUPS = {"staging": ("staging", "restricted"), "marts": ("marts",), "models": ("models",)}
STAGES = (*PIPELINE_STAGES, "pandas")


def in_dependency_order(groups: tuple[str, ...]) -> list:
    """The group's assets (SQL models from the factory, model assets from ``assets.models``),
    each after the assets of the group it depends on."""
    # Dagster is imported here, not at the top, so the pandas stage's memory figure is pandas'.
    import dagster as dg

    from assets import models
    from assets.warehouse.sql_models import sql_model_assets

    assets = {next(iter(a.specs)).key: a for a in [*sql_model_assets(), *dg.load_assets_from_package_module(models)]}
    pending = {key: {d.asset_key for d in next(iter(a.specs)).deps}
               for key, a in assets.items() if next(iter(a.specs)).group_name in groups}
    if not pending:
        raise SystemExit(f"no assets in groups {groups}")
    ordered = []
    while pending:
        ready = sorted((key for key, deps in pending.items() if not deps & pending.keys()),
                       key=lambda key: key.to_user_string())
        if not ready:
            raise SystemExit(f"dependency cycle among {sorted(k.to_user_string() for k in pending)}")
        ordered += [assets[key] for key in ready]
        for key in ready:
            del pending[key]
    return ordered


def _run_assets(ordered: list, warehouse: str, threads: int, memory_limit: str) -> tuple[dict, dict]:
    """Build each SQL model the way its asset does (``build_model``); invoke each Python asset
    directly with a DuckDB resource on the warehouse. Rows: of every table an asset writes."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from assets.warehouse.sql_models import SQL_DIR, build_model, read_model

    config = {"threads": threads, "memory_limit": memory_limit}
    resource_ = DuckDBResource(database=warehouse, connection_config=config)
    seconds, keys = {}, []
    for asset in ordered:
        spec = next(iter(asset.specs))
        started = time.monotonic()
        if "sql_file" in spec.metadata:
            with duckdb.connect(warehouse, config=config) as conn:
                build_model(conn, read_model(SQL_DIR.parent / spec.metadata["sql_file"]))
        else:
            outputs = asset(context=dg.build_asset_context(), duckdb=resource_)
            if isinstance(outputs, Iterator):
                list(outputs)
        seconds[spec.key.to_user_string()] = time.monotonic() - started
        keys += sorted(asset.keys, key=lambda key: key.to_user_string())
    with duckdb.connect(warehouse, read_only=True) as conn:
        rows = {key.to_user_string(): conn.sql(f"select count(*) from {'.'.join(key.path)}").fetchone()[0]
                for key in keys}
    return rows, seconds


def _pandas(warehouse: str, output: Path) -> dict[str, int]:
    with duckdb.connect(warehouse, read_only=True) as conn:
        mart = team_month_mart(conn)
    mart.to_parquet(output)
    return {"pandas/mart_team_month": len(mart)}


def run(stage: str, warehouse: str, threads: int, memory_limit: str, output: Path | None) -> dict:
    if stage == "pandas":
        started, cpu_started = time.monotonic(), _cpu_seconds()
        rows, steps = _pandas(warehouse, output), {}
    else:
        ordered = in_dependency_order(STAGE_GROUPS[stage])
        started, cpu_started = time.monotonic(), _cpu_seconds()
        rows, steps = _run_assets(ordered, warehouse, threads, memory_limit)
    seconds, cpu_seconds = time.monotonic() - started, _cpu_seconds() - cpu_started
    return {"stage": stage, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_bytes": peak_rss_bytes(),
            "load_average": os.getloadavg()[0], "rows": rows, "step_seconds": steps}


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
    parser.add_argument("--output", type=Path, help="where the pandas stage writes its mart (Parquet)")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        parser.error(f"no warehouse at {args.warehouse}")
    if args.stage == "pandas" and args.output is None:
        parser.error("the pandas stage needs --output")
    print(json.dumps(run(args.stage, str(args.warehouse), args.threads, args.memory_limit, args.output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
