"""EXPLAIN ANALYZE the SQL models of a benchmark warehouse, to find where a stage spends its time.

    python -m benchmarks.profile_models WAREHOUSE [--models staging/stg_jira__issues ...]
                                        [--threads 2] [--memory-limit 3GiB]

WAREHOUSE is one a ``benchmarks.scale --keep`` run left behind (its models already built, so
any model can be profiled on its own). Opens it read-only and prints DuckDB's profile of
each model's SELECT, in dependency order: operator timings, rows and the expressions run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from assets.warehouse.sql_models import SQL_DIR, read_model
from benchmarks.stages import in_dependency_order


def profiles(warehouse: Path, models: list[str] | None, threads: int, memory_limit: str):
    """(model, profile text) for each chosen model, in dependency order."""
    chosen = [
        spec
        for asset in in_dependency_order(("staging", "restricted", "marts"))
        if "sql_file" in (spec := next(iter(asset.specs))).metadata
    ]
    if models:
        unknown = set(models) - {spec.key.to_user_string() for spec in chosen}
        if unknown:
            raise SystemExit(f"no SQL models {sorted(unknown)}; known: {[s.key.to_user_string() for s in chosen]}")
        chosen = [spec for spec in chosen if spec.key.to_user_string() in models]
    config = {"threads": threads, "memory_limit": memory_limit}
    with duckdb.connect(str(warehouse), read_only=True, config=config) as conn:
        for spec in chosen:
            select_sql = read_model(SQL_DIR.parent / spec.metadata["sql_file"]).select_sql
            [(_, profile)] = conn.sql(f"explain analyze {select_sql}").fetchall()
            yield spec.key.to_user_string(), profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--models", nargs="+", help="e.g. staging/stg_jira__issues (default: every SQL model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GiB")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        parser.error(f"no warehouse at {args.warehouse}")
    for model, profile in profiles(args.warehouse, args.models, args.threads, args.memory_limit):
        print(f"===== {model}\n{profile}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
