"""Reload the landing folder when an export in it is new or changed.

Survey and HR exports arrive whenever their owners drop them, not on the nightly schedule;
this sensor notices them and requests a run of the landing assets and everything downstream
(staging, marts, models), so the numbers reflect a new survey wave without waiting a night.
"""

import json
import time
from pathlib import Path

import dagster as dg

from assets.landing.resource import LandingFolderResource
from assets.warehouse.dead_runs import freeing_dead_run_slots
from assets.warehouse.partitions import every_month_tags

# Exports are CSV files and the team map YAML; anything else (notes, partial uploads named
# *.part or .hidden) is not an export.
EXPORT_SUFFIXES = {".csv", ".yml", ".yaml"}
# A file modified this recently may still be being copied in: wait for the next tick.
SETTLE_SECONDS = 60

landing_refresh_job = dg.define_asset_job(
    "landing_refresh",
    selection=dg.AssetSelection.groups("landing").downstream(),
    description="Reload the landing-folder exports and rebuild everything that depends on them.",
    executor_def=freeing_dead_run_slots(dg.in_process_executor),
)


def export_states(folder: Path) -> dict[str, list[int]]:
    """``{file name: [mtime in ns, size in bytes]}`` for every export in ``folder``."""
    states = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in EXPORT_SUFFIXES and not path.name.startswith("."):
            stat = path.stat()
            states[path.name] = [stat.st_mtime_ns, stat.st_size]
    return states


@dg.sensor(
    job=landing_refresh_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def landing_files_sensor(context: dg.SensorEvaluationContext, landing: LandingFolderResource):
    """Requests a `landing_refresh` run when a survey, HR or team-map export in the landing
    folder (`PSAFE_LANDING_DIR`) is new or changed (by name, modification time and size),
    once it has not been modified for a minute."""
    folder = Path(landing.path)
    if not folder.is_dir():
        return dg.SkipReason(f"landing folder {folder} does not exist")
    seen = json.loads(context.cursor) if context.cursor else {}
    current = export_states(folder)
    changed = sorted(name for name, state in current.items() if seen.get(name) != state)
    if not changed:
        return dg.SkipReason(f"no new or changed exports among {len(current)} files in {folder}")
    newest = max(current[name][0] for name in changed) / 1e9
    if time.time() - newest < SETTLE_SECONDS:
        return dg.SkipReason(f"{', '.join(changed)} modified less than {SETTLE_SECONDS} s ago; waiting for the copy to finish")
    context.update_cursor(json.dumps(current, sort_keys=True))
    context.log.info(f"new or changed exports: {', '.join(changed)}")
    return dg.RunRequest(
        run_key=json.dumps({name: current[name] for name in changed}, sort_keys=True),
        tags={"psafe/changed_exports": ", ".join(changed), **every_month_tags()},
    )
