"""Reading HR exports in tests as the HR asset does: one file, or the asset on a landing folder."""

import logging
import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg

from assets.landing.assets import hr_exports
from assets.landing.hr import HrFile, read_hr_file
from assets.landing.mapping import read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import take_snapshot
from assets.warehouse.resource import WarehouseResource


def read_roster(folder: Path, name: str, mapping: str, now: datetime, text: str | None = None,
                source: Path | None = None) -> HrFile:
    """The export ``name`` (``text``, or a copy of ``source``) read as the HR asset reads one
    file, at ``now``, with ``mapping`` as export_mapping.yml and Payments as the one org unit."""
    landing = folder / "landing"
    landing.mkdir(parents=True)
    path = landing / name
    if source is not None:
        shutil.copy(source, path)
    else:
        path.write_text(text)
    (landing / "export_mapping.yml").write_text(mapping)
    work = folder / "work"
    work.mkdir()
    settings = read_mapping(landing).settings(name, "hr")
    return read_hr_file(take_snapshot(path, work), name, settings, {"payments": "Payments"}, now, "salt", work)


def hr_load_warnings(folder: Path, warehouse: Path) -> list[str]:
    """The HR asset materialised on the landing ``folder``: the warnings it logged."""
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [hr_exports], instance=instance,
        resources={"landing": LandingFolderResource(path=str(folder), hr_id_salt="salt", settle_seconds=0),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        run_config={"ops": {"hr_exports": {"config": {"accept_shrunk_exports": []}}}})
    assert result.success
    return [record.user_message for record in instance.all_logs(result.run_id) if record.level == logging.WARNING]


def load_hr_exports(folder: Path, warehouse: Path, table: str = "hr__headcount") -> dict:
    """The HR asset materialised on the landing ``folder``: the metadata of its raw ``table``."""
    result = dg.materialize(
        [hr_exports], raise_on_error=False,
        resources={"landing": LandingFolderResource(path=str(folder), hr_id_salt="salt"),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        run_config={"ops": {"hr_exports": {"config": {"accept_shrunk_exports": []}}}})
    assert result.success
    [metadata] = [e.materialization.metadata for e in result.get_asset_materialization_events()
                  if e.asset_key == dg.AssetKey(["raw", table])]
    return metadata
