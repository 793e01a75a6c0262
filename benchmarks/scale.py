"""Scale benchmark: bulk organisations at 1x, 10x and 100x, the pipeline's stages timed.

    python -m benchmarks.scale --scales 1 10 100 [--threads 2] [--memory-limit 3GiB]
                               [--workdir DIR] [--keep] [--reuse] [--results results.json]

Per scale: generate the raw warehouse (benchmarks.bulk_org; not timed against targets),
then run the stages, each in its own process (benchmarks.stages) for its wall time and peak
memory: the first build's staging (every record derived, --full-refresh) and marts; a night's
sync (a day of raw records re-written, not timed); the nightly run's staging (incremental:
only those records), marts (over the first build's) and models. Then the pandas and polars
(lazy) baselines of the team-month mart from the same raw tables (their typed columns), each
compared with the SQL mart, and the table.

Targets (issue #10), at 100x on 2 cores: the first build (raw -> models) under 2 minutes and
4 GiB; the SQL's first build and nightly run (staging + marts: what the baselines compute)
each at least 10x faster than the pandas baseline and no slower than the polars one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
from tabulate import tabulate

from assets.landing.assets import SURVEY_RESPONSES
from assets.warehouse.resource import attach_restricted
from assets.warehouse.restricted import resolve_restricted_path
from benchmarks.bulk_org import SCALES, build_raw_warehouse
from benchmarks.pandas_baseline import compare
from benchmarks.stages import BASELINES

REPO = Path(__file__).resolve().parents[1]
PIPELINE_SECONDS_TARGET = 120
PEAK_BYTES_TARGET = 4 * 1024**3
SPEEDUP_TARGET = 10
# The first build derives every raw record and builds the marts from nothing; then a night's
# sync re-writes a day of records, the nightly run's staging derives only those (incremental
# staging models), and its marts are rebuilt over every month on the first build's (a survey
# wave already frozen is not computed again), before the models. The models are fitted once:
# they read the same marts either way.
TIMED_STAGES = ("first staging", "first marts", "nightly staging", "nightly marts", "models")
FIRST_BUILD_STAGES = ("first staging", "first marts", "models")
NIGHTLY_STAGES = ("nightly staging", "nightly marts", "models")
STAGE_RUNS = {"first staging": "staging", "first marts": "marts", "nightly staging": "staging",
              "nightly marts": "marts", "models": "models"}


def _throttled(every_seconds: float = 5.0):
    last = [0.0]

    def progress(message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_seconds or "month 1/" in message or "month" not in message or _is_last_month(message):
            print(message, flush=True)
            last[0] = now

    return progress


def _is_last_month(message: str) -> bool:
    done, _, total = message.partition("month ")[2].partition(",")[0].partition("/")
    return bool(done) and done == total


def run_stage(stage: str, warehouse: Path, threads: int, memory_limit: str, log: Path,
              output: Path | None = None, full_refresh: bool = False) -> dict:
    command = [sys.executable, "-m", "benchmarks.stages", stage, str(warehouse),
               "--threads", str(threads), "--memory-limit", memory_limit]
    if output is not None:
        command += ["--output", str(output)]
    if full_refresh:
        command += ["--full-refresh"]
    with log.open("a") as stderr:
        done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"stage {stage} failed (exit {done.returncode}); end of {log}:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def restamp_last_day(warehouse: Path) -> dict[str, int]:
    """What a nightly sync writes: the raw records of the last day of data (incidents
    triggered in it with their log entries, issues updated in it) upserted again, i.e.
    stamped with a new load time. Found through the first build's staging tables."""
    day = "(select max({column}) - interval 1 day from {table})"
    incidents = ("select incident_id from staging.stg_pagerduty__incidents where created_at >= "
                 + day.format(column="created_at", table="staging.stg_pagerduty__incidents"))
    selections = {
        "pagerduty__incidents": incidents,
        "pagerduty__log_entries": "select log_entry_id from staging.stg_pagerduty__log_entries "
                                  f"where incident_id in ({incidents})",
        "jira__issues": "select issue_id from staging.stg_jira__issues where updated_at >= "
                        + day.format(column="updated_at", table="staging.stg_jira__issues"),
    }
    with duckdb.connect(str(warehouse)) as conn:
        return {table: conn.execute(f"update raw.{table} set loaded_at = now() where id in ({ids})").fetchone()[0]
                for table, ids in selections.items()}


def keep_only_raw_tables(warehouse: Path) -> list[str]:
    """What a first build starts from, on a warehouse a --keep run left: the tables the generator
    wrote (the raw schema, and the survey answers in the restricted file) and nothing else. An
    earlier run's staging, marts, models and frozen survey waves would make the first build an
    incremental one. Returns the tables dropped."""
    survey_schema, survey_table = SURVEY_RESPONSES.path
    with duckdb.connect(str(warehouse)) as conn:
        attach_restricted(conn, str(warehouse), resolve_restricted_path(str(warehouse)))
        warehouse_database = conn.sql("select current_database()").fetchone()[0]
        derived = [f'"{database}"."{schema}"."{table}"' for database, schema, table in conn.execute(
            "select database_name, schema_name, table_name from duckdb_tables() where not (database_name = ? and "
            "schema_name = 'raw') and not (database_name = ? and table_name = ?) order by all",
            [warehouse_database, survey_schema, survey_table]).fetchall()]
        for table in derived:
            conn.execute(f"drop table {table}")
    return derived


def benchmark_scale(scale: int, workdir: Path, threads: int, memory_limit: str, reuse: bool = False) -> dict:
    spec = SCALES[scale]
    folder = workdir / f"scale-{scale}x"
    folder.mkdir(parents=True, exist_ok=True)
    warehouse, log = folder / "warehouse.duckdb", folder / "stages.log"
    print(f"== {scale}x: {spec.n_teams} teams, {spec.n_months} months, "
          f"{spec.incidents_per_head_month} incidents and {spec.tickets_per_head_month} tickets per head-month "
          f"-> {warehouse}", flush=True)
    if reuse and warehouse.is_file():
        generated = None
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            raw_rows = {name: conn.sql(f"select count(*) from raw.{name}").fetchone()[0] for (name,) in conn.sql(
                "select table_name from duckdb_tables() where schema_name = 'raw' order by table_name").fetchall()}
        print("  reusing its raw tables: " + ", ".join(f"{table} {rows:,}" for table, rows in raw_rows.items()))
        dropped = keep_only_raw_tables(warehouse)
        print(f"  dropped the {len(dropped)} other tables an earlier run left", flush=True)
    else:
        warehouse.unlink(missing_ok=True)
        started = time.monotonic()
        raw_rows = build_raw_warehouse(warehouse, spec, progress=_throttled(), threads=threads)
        generated = time.monotonic() - started
        print(f"  raw tables written in {generated:.0f} s: "
              + ", ".join(f"{table} {rows:,}" for table, rows in raw_rows.items()), flush=True)
    stages = {}
    for stage in TIMED_STAGES:
        if stage == "nightly staging":
            restamped = restamp_last_day(warehouse)
            print("  the night's sync: " + ", ".join(f"{table} {rows:,}" for table, rows in restamped.items())
                  + " records re-written", flush=True)
        print(f"  {stage} ...", flush=True)
        stages[stage] = run_stage(STAGE_RUNS[stage], warehouse, threads, memory_limit, log,
                                  full_refresh=stage == "first staging")
        print(f"  {stage}: {stages[stage]['seconds']:.1f} s, peak {stages[stage]['peak_rss_bytes'] / 1024**3:.2f} GiB",
              flush=True)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        sql_mart = conn.sql("select * from marts.mart_team_month").df()
    baselines, comparisons = {}, {}
    for name in BASELINES:
        print(f"  {name} baseline ...", flush=True)
        output = folder / f"{name}_mart_team_month.parquet"
        baselines[name] = run_stage(name, warehouse, threads, memory_limit, log, output=output)
        comparisons[name] = compare(sql_mart, pd.read_parquet(output))
        print(f"  {name}: {baselines[name]['seconds']:.1f} s, peak "
              f"{baselines[name]['peak_rss_bytes'] / 1024**3:.2f} GiB", flush=True)
    return {
        "scale": scale,
        "teams": spec.n_teams,
        "months": spec.n_months,
        "raw_rows": raw_rows,
        "generate_seconds": generated,
        "stages": stages,
        "baselines": baselines,
        "comparisons": comparisons,
    }


def summary_row(result: dict) -> dict:
    stages, baselines = result["stages"], result["baselines"]

    def seconds(*names: str, measure: str = "seconds") -> float:
        return sum(stages[name][measure] for name in names)

    first_build, nightly = seconds(*FIRST_BUILD_STAGES), seconds(*NIGHTLY_STAGES)
    # What the baselines make (the mart from the raw tables), as the pipeline makes it.
    first_sql, nightly_sql = seconds("first staging", "first marts"), seconds("nightly staging", "nightly marts")
    pandas, polars = baselines["pandas"]["seconds"], baselines["polars"]["seconds"]
    peak = max(stages[s]["peak_rss_bytes"] for s in TIMED_STAGES)
    load = max(r["load_average"] for r in (*stages.values(), *baselines.values()))
    equal = all(comparison["equal"] for comparison in result["comparisons"].values())

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    return {
        "scale": f"{result['scale']}x",
        "teams": result["teams"],
        "months": result["months"],
        "incidents": f"{result['raw_rows']['pagerduty__incidents']:,}",
        "log entries": f"{result['raw_rows']['pagerduty__log_entries']:,}",
        "tickets": f"{result['raw_rows']['jira__issues']:,}",
        "generate s": "reused" if result["generate_seconds"] is None else f"{result['generate_seconds']:.0f}",
        "first staging s": f"{stages['first staging']['seconds']:.1f}",
        "nightly staging s": f"{stages['nightly staging']['seconds']:.1f}",
        "first marts s": f"{stages['first marts']['seconds']:.1f}",
        "nightly marts s": f"{stages['nightly marts']['seconds']:.1f}",
        "models s": f"{stages['models']['seconds']:.1f}",
        "first build s": f"{first_build:.1f}",
        "nightly s": f"{nightly:.1f}",
        "peak GiB": f"{peak / 1024**3:.2f}",
        "SQL first s": f"{first_sql:.1f}",
        "SQL nightly s": f"{nightly_sql:.1f}",
        "pandas s": f"{pandas:.1f}",
        "polars s": f"{polars:.1f}",
        "pandas GiB": f"{baselines['pandas']['peak_rss_bytes'] / 1024**3:.2f}",
        "polars GiB": f"{baselines['polars']['peak_rss_bytes'] / 1024**3:.2f}",
        "first vs pandas": f"{pandas / first_sql:.1f}x",
        "nightly vs pandas": f"{pandas / nightly_sql:.1f}x",
        "first vs polars": f"{polars / first_sql:.1f}x",
        "nightly vs polars": f"{polars / nightly_sql:.1f}x",
        "load": f"{load:.1f}",
        "marts equal": "yes" if equal else "NO",
        "<2 min first build": verdict(first_build < PIPELINE_SECONDS_TARGET),
        "<4 GiB": verdict(peak < PEAK_BYTES_TARGET),
        ">=10x pandas": verdict(min(pandas / first_sql, pandas / nightly_sql) >= SPEEDUP_TARGET),
        ">=1x polars": verdict(min(polars / first_sql, polars / nightly_sql) >= 1),
    }


def print_details(result: dict) -> None:
    for name, comparison in result["comparisons"].items():
        print(f"  SQL mart vs {name} baseline: {comparison['rows_sql']:,} vs {comparison['rows_pandas']:,} rows, "
              f"{len(comparison['columns_compared'])} columns compared, "
              + ("all equal" if comparison["equal"] else
                 f"MISMATCH: rows only in SQL {comparison['rows_only_sql']}, only in {name} "
                 f"{comparison['rows_only_pandas']}, columns {comparison['mismatched_columns']}"))
        if comparison["columns_not_in_baseline"]:
            print(f"  columns of the SQL mart the {name} baseline does not compute: "
                  f"{comparison['columns_not_in_baseline']}")
    for stages in (FIRST_BUILD_STAGES, NIGHTLY_STAGES):
        steps = {step: seconds for s in stages for step, seconds in result["stages"][s]["step_seconds"].items()}
        slowest = sorted(steps.items(), key=lambda item: -item[1])[:5]
        print(f"  slowest steps of the {'first build' if stages == FIRST_BUILD_STAGES else 'nightly run'}: "
              + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in slowest), flush=True)
    setup = max(stage["setup_seconds"] for stage in result["stages"].values())
    print(f"  per stage, not in its time: imports and dbt's parse of the project, at most {setup:.1f} s", flush=True)


def _outside_repo(path: str) -> Path:
    path = Path(path).resolve()
    if path == REPO or REPO in path.parents:
        raise argparse.ArgumentTypeError(f"{path} is inside the repository; put benchmark warehouses elsewhere")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100], choices=sorted(SCALES))
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--memory-limit", default="3GiB",
                        help="DuckDB memory limit per stage (default 3GiB: the 4 GiB target less the Python process)")
    parser.add_argument("--workdir", type=_outside_repo,
                        help="where warehouses go (default: a new temporary folder, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the raw tables of warehouses a --keep run left in --workdir (no generation)")
    parser.add_argument("--results", type=Path, help="also write every figure as JSON here")
    args = parser.parse_args(argv)
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs the --workdir of an earlier --keep run")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="psafe-bench-"))
    results, rows = [], []
    try:
        for scale in args.scales:
            result = benchmark_scale(scale, workdir, args.threads, args.memory_limit, args.reuse)
            print_details(result)
            results.append(result)
            rows.append(summary_row(result))
            print(tabulate(rows, headers="keys", tablefmt="github"), flush=True)
    finally:
        if not args.keep:
            for scale in args.scales:
                shutil.rmtree(workdir / f"scale-{scale}x", ignore_errors=True)
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    if args.results:
        args.results.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfirst build = first staging (every record) + first marts + models; nightly = nightly staging (only "
          f"the re-written records) + nightly marts + models; SQL first / nightly = that staging + those marts (what "
          f"the baselines compute, from the raw tables); x vs pandas/polars = baseline time / SQL time; peak = the largest of "
          f"the stages' peaks; load = the highest 1-minute load average at a stage's end (above the core count, "
          f"other processes were slowing the wall times); threads={args.threads}, DuckDB "
          f"memory_limit={args.memory_limit}; the targets are stated for 100x")
    return 0 if all(r["marts equal"] == "yes" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
