"""How long a 200 MB HR export takes to load, and the memory it needs (issue 16: under 30 s
and under 1 GiB). Prints the figures; not a timed test.

    .venv/bin/python benchmarks/hr_load.py [--megabytes 200] [--layout snapshots|bamboohr]

Writes a monthly headcount snapshot file (the pipeline's hr_headcount.csv layout) or a
BambooHR-style roster of about the given size into a temporary folder, then, in a fresh
process, runs exactly what the HR landing asset runs on one file: the verified snapshot
copy, DuckDB's CSV reader, the row checks, id hashing and (for a roster) the derived monthly
snapshots. Peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ORG_UNITS = 400


def write_export(path: Path, megabytes: int, layout: str) -> int:
    """Write about ``megabytes`` of export to ``path``; return its row count."""
    conn = duckdb.connect()
    if layout == "snapshots":
        row_bytes = 44  # "2024-03-01,E00123456,OU-1234,senior engineer,false\n" and the like
        rows = megabytes * 1024 * 1024 // row_bytes
        conn.execute(f"""copy (
            select strftime(date '2024-01-01' + to_months((i % 24)::int), '%Y-%m-%d') as snapshot_date,
                   printf('E%09d', i // 24) as employee_id, printf('OU-%d', 1000 + (i // 24) % {ORG_UNITS}) as org_unit,
                   ['engineer', 'senior engineer', 'sre', 'manager', 'analyst'][1 + (i % 5)::int] as role,
                   (i % 7 = 0)::varchar as critical_role
            from range({rows}) as t(i)) to '{path}' (header, delimiter ',')""")
    else:
        row_bytes = 100
        rows = megabytes * 1024 * 1024 // row_bytes
        conn.execute(f"""copy (
            select printf('%d', 100000 + i) as "Employee #", 'First' as "First Name", 'Last' as "Last Name",
                   printf('OU-%d', 1000 + i % {ORG_UNITS}) as "Department", 'Senior Engineer' as "Job Title",
                   strftime(date '2015-01-01' + (i % 3000)::int, '%m/%d/%Y') as "Hire Date",
                   case when i % 9 = 0 then strftime(date '2024-01-01' + (i % 500)::int, '%m/%d/%Y') else '' end
                       as "Termination Date",
                   case when i % 9 = 0 then (case when i % 2 = 0 then 'Voluntary' else 'Involuntary' end) else '' end
                       as "Termination Type"
            from range({rows}) as t(i)) to '{path}' (header, delimiter ',')""")
    conn.close()
    return rows


def load_once(path: Path) -> dict:
    """The HR asset's work on one file, in this process."""
    from assets.landing.hr import read_hr_file
    from assets.landing.mapping import read_mapping
    from assets.landing.snapshot import take_snapshot

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="psafe-bench-") as workdir:
        snapshot = take_snapshot(path, Path(workdir))
        org_units = {f"ou-{1000 + i}": f"OU-{1000 + i}" for i in range(ORG_UNITS)}
        loaded = read_hr_file(snapshot, path.name, read_mapping(path.parent).settings(path.name, "hr"), org_units,
                              datetime.now(UTC), "benchmark-salt", Path(workdir))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_bytes": peak, "headcount_rows": loaded.counts["headcount"],
            "termination_rows": loaded.counts["terminations"], "quarantined": loaded.counts["quarantine"],
            "preset": loaded.preset}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--layout", choices=("snapshots", "bamboohr"), default="snapshots")
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)  # the measured child process
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load_once(args.load)))
        return
    with tempfile.TemporaryDirectory(prefix="psafe-hr-bench-") as folder:
        path = Path(folder) / ("hr_headcount.csv" if args.layout == "snapshots" else "bamboohr_employees.csv")
        print(f"writing a {args.layout} export of about {args.megabytes} MB ...", flush=True)
        rows = write_export(path, args.megabytes, args.layout)
        size = path.stat().st_size
        done = subprocess.run([sys.executable, __file__, "--load", str(path)], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).resolve().parents[1])
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"export:       {size / 2**20:.0f} MiB, {rows:,} rows ({args.layout}, preset {figures['preset']})")
    print(f"load time:    {figures['seconds']:.1f} s   (target: under 30 s)")
    print(f"peak memory:  {figures['peak_bytes'] / 2**30:.2f} GiB (target: under 1 GiB; the whole process)")
    print(f"loaded:       {figures['headcount_rows']:,} headcount rows, {figures['termination_rows']:,} leavers, "
          f"{figures['quarantined']:,} quarantined")


if __name__ == "__main__":
    main()
