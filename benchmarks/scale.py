"""Scale benchmark: bulk organisations at 1x, 10x and 100x, the pipeline's stages timed.

    python -m benchmarks.scale --scales 1 10 100 [--threads 2] [--memory-limit 3GiB]
                               [--workdir DIR] [--keep] [--reuse] [--results results.json]

Per scale: generate the raw warehouse (benchmarks.bulk_org; not timed against targets),
then run the stages, each in its own process (benchmarks.stages) for its wall time and peak
memory: the first build of staging (every raw payload parsed); a night's sync (a day of raw
records re-written, not timed); the nightly run's staging (incremental: only those records),
marts and models. Then the pandas baseline of the team-month mart from the same raw tables,
compared with the SQL mart, and the table.

Targets (issue #5): the 100x full rebuild of marts and models under 2 minutes and 4 GiB on
2 cores (checked both for marts + models and for the first build from raw); the SQL at
least 10x faster than the pandas baseline (the nightly run's staging and marts; the first
build's figure is printed beside it).
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

from benchmarks.bulk_org import SCALES, build_raw_warehouse
from benchmarks.pandas_baseline import compare

REPO = Path(__file__).resolve().parents[1]
PIPELINE_SECONDS_TARGET = 120
PEAK_BYTES_TARGET = 4 * 1024**3
SPEEDUP_TARGET = 10
# The first build parses every raw payload; then a night's sync re-writes a day of records and
# the nightly run's staging derives only those (incremental staging models), before the marts
# and models are rebuilt whole.
TIMED_STAGES = ("first staging", "nightly staging", "marts", "models")
FIRST_BUILD_STAGES = ("first staging", "marts", "models")
STAGE_RUNS = {"first staging": "staging", "nightly staging": "staging", "marts": "marts", "models": "models"}


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
              output: Path | None = None) -> dict:
    command = [sys.executable, "-m", "benchmarks.stages", stage, str(warehouse),
               "--threads", str(threads), "--memory-limit", memory_limit]
    if output is not None:
        command += ["--output", str(output)]
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
    else:
        warehouse.unlink(missing_ok=True)
        started = time.monotonic()
        raw_rows = build_raw_warehouse(warehouse, spec, progress=_throttled(), threads=threads)
        generated = time.monotonic() - started
        print(f"  raw tables written in {generated:.0f} s: "
              + ", ".join(f"{table} {rows:,}" for table, rows in raw_rows.items()), flush=True)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("drop schema if exists staging cascade")
    stages = {}
    for stage in TIMED_STAGES:
        if stage == "nightly staging":
            restamped = restamp_last_day(warehouse)
            print("  the night's sync: " + ", ".join(f"{table} {rows:,}" for table, rows in restamped.items())
                  + " records re-written", flush=True)
        print(f"  {stage} ...", flush=True)
        stages[stage] = run_stage(STAGE_RUNS[stage], warehouse, threads, memory_limit, log)
        print(f"  {stage}: {stages[stage]['seconds']:.1f} s, peak {stages[stage]['peak_rss_bytes'] / 1024**3:.2f} GiB",
              flush=True)
    print("  pandas baseline ...", flush=True)
    baseline_output = folder / "pandas_mart_team_month.parquet"
    baseline = run_stage("pandas", warehouse, threads, memory_limit, log, output=baseline_output)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        sql_mart = conn.sql("select * from marts.mart_team_month").df()
    comparison = compare(sql_mart, pd.read_parquet(baseline_output))
    return {
        "scale": scale,
        "teams": spec.n_teams,
        "months": spec.n_months,
        "raw_rows": raw_rows,
        "generate_seconds": generated,
        "stages": stages,
        "pandas": baseline,
        "comparison": comparison,
    }


def summary_row(result: dict) -> dict:
    stages = result["stages"]

    def seconds(*names: str, measure: str = "seconds") -> float:
        return sum(stages[name][measure] for name in names)

    first_build = seconds(*FIRST_BUILD_STAGES)
    nightly = seconds("nightly staging", "marts", "models")
    rebuild_seconds = seconds("marts", "models")
    peak = max(stages[s]["peak_rss_bytes"] for s in TIMED_STAGES)
    sql_seconds = seconds("nightly staging", "marts")
    ratio = result["pandas"]["seconds"] / sql_seconds
    first_ratio = result["pandas"]["seconds"] / seconds("first staging", "marts")
    sql_cpu = seconds("nightly staging", "marts", measure="cpu_seconds")
    load = max(r["load_average"] for r in (*stages.values(), result["pandas"]))
    equal = result["comparison"]["equal"]

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
        "marts s": f"{stages['marts']['seconds']:.1f}",
        "models s": f"{stages['models']['seconds']:.1f}",
        "first build s": f"{first_build:.1f}",
        "nightly s": f"{nightly:.1f}",
        "marts+models s": f"{rebuild_seconds:.1f}",
        "peak GiB": f"{peak / 1024**3:.2f}",
        "SQL s": f"{sql_seconds:.1f}",
        "pandas s": f"{result['pandas']['seconds']:.1f}",
        "pandas GiB": f"{result['pandas']['peak_rss_bytes'] / 1024**3:.2f}",
        "speedup": f"{ratio:.1f}x",
        "speedup CPU": f"{result['pandas']['cpu_seconds'] / sql_cpu:.1f}x",
        "speedup first build": f"{first_ratio:.1f}x",
        "load": f"{load:.1f}",
        "marts equal": "yes" if equal else "NO",
        "<2 min first build": verdict(first_build < PIPELINE_SECONDS_TARGET),
        "<2 min marts+models": verdict(rebuild_seconds < PIPELINE_SECONDS_TARGET),
        "<4 GiB": verdict(peak < PEAK_BYTES_TARGET),
        ">=10x": verdict(ratio >= SPEEDUP_TARGET),
        ">=10x first build": verdict(first_ratio >= SPEEDUP_TARGET),
    }


def print_details(result: dict) -> None:
    comparison = result["comparison"]
    print(f"  SQL mart vs pandas baseline: {comparison['rows_sql']:,} vs {comparison['rows_pandas']:,} rows, "
          f"{len(comparison['columns_compared'])} columns compared, "
          + ("all equal" if comparison["equal"] else
             f"MISMATCH: rows only in SQL {comparison['rows_only_sql']}, only in pandas "
             f"{comparison['rows_only_pandas']}, columns {comparison['mismatched_columns']}"))
    if comparison["columns_not_in_baseline"]:
        print(f"  columns of the SQL mart the baseline does not compute: {comparison['columns_not_in_baseline']}")
    steps = {step: seconds for s in FIRST_BUILD_STAGES for step, seconds in result["stages"][s]["step_seconds"].items()}
    slowest = sorted(steps.items(), key=lambda item: -item[1])[:5]
    print("  slowest steps of the first build: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in slowest), flush=True)


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
    print(f"\nfirst build = first staging + marts + models (raw -> models, every payload parsed); nightly = "
          f"nightly staging (only the re-written records) + marts + models; SQL = nightly staging + marts (what "
          f"the pandas baseline does, from the raw tables); speedup first build = pandas / (first staging + "
          f"marts); peak = the largest of the stages' peaks; CPU = user + system seconds of the stage "
          f"processes; load = the highest 1-minute load average at a stage's end (above the core count, other "
          f"processes were slowing the wall times); threads={args.threads}, DuckDB "
          f"memory_limit={args.memory_limit}; the targets are stated for 100x")
    return 0 if all(r["marts equal"] == "yes" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
