"""Reload the landing folder when an export in it is new or changed.

Survey and HR exports arrive whenever their owners drop them, not on the nightly schedule;
this sensor notices them and requests a run of the landing assets and everything downstream
(staging, marts, models), so the numbers reflect a new survey wave without waiting a night.
"""

import json
from pathlib import Path

import dagster as dg

from assets.landing.files import watched_files
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import file_state, is_ready
from assets.warehouse.dead_runs import freeing_dead_run_slots
from assets.warehouse.partitions import every_month_tags

landing_refresh_job = dg.define_asset_job(
    "landing_refresh",
    selection=dg.AssetSelection.groups("landing").downstream(),
    description="Reload the landing-folder exports and rebuild everything that depends on them.",
    executor_def=freeing_dead_run_slots(dg.in_process_executor),
)


def export_states(folder: Path) -> dict[str, list[int]]:
    """``{file name: [mtime in ns, size in bytes]}`` for every export and configuration
    file in ``folder`` (hidden files and partial uploads such as ``*.part`` are not)."""
    return {path.name: list(file_state(path)) for path in watched_files(folder)}


@dg.sensor(
    job=landing_refresh_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def landing_files_sensor(context: dg.SensorEvaluationContext, landing: LandingFolderResource):
    """Requests a `landing_refresh` run when a survey or HR export, the team map or the
    mapping file in the landing folder (`PSAFE_LANDING_DIR`) is new or changed (by name,
    modification time and size), once every changed file is complete: unchanged for the
    landing resource's settle_seconds (a minute) and, for XLSX, a whole ZIP archive. Every
    run applies the same rule to each file it reads."""
    folder = Path(landing.path)
    if problem := landing.missing_folder():
        return dg.SkipReason(problem)
    seen = json.loads(context.cursor) if context.cursor else {}
    current = export_states(folder)
    changed = sorted(name for name, state in current.items() if seen.get(name) != state)
    if not changed:
        return dg.SkipReason(f"no new or changed exports among {len(current)} files in {folder}")
    not_ready = [why for name in changed for ok, why in [is_ready(folder / name, landing.settle_seconds)] if not ok]
    if not_ready:
        return dg.SkipReason("; ".join(not_ready))
    context.update_cursor(json.dumps(current, sort_keys=True))
    context.log.info(f"new or changed exports: {', '.join(changed)}")
    return dg.RunRequest(
        run_key=json.dumps({name: current[name] for name in changed}, sort_keys=True),
        tags={"psafe/changed_exports": ", ".join(changed), **every_month_tags()},
    )
