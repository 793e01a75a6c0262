"""Qualtrics survey responses pulled through the response-export API into the landing folder.

Each run exports, per survey, the responses recorded since the previous export and writes
them as one file in Qualtrics' own CSV layout, ``qualtrics_<surveyId>_<from>_<to>.csv``
(times in UTC), where the landing loader reads them like any other Qualtrics export. The
file names are the sync state: the next export starts where the newest file ends, so a
deleted file is exported again and nothing depends on a hidden state store. Files are
written under a hidden name and renamed, so the sensor never sees half a file.
"""

import os
import re
from datetime import datetime
from pathlib import Path

import dagster as dg

from assets.api_retry import API_ASSET_RETRY_POLICY, failing_clearly
from assets.landing.resource import LandingFolderResource
from assets.qualtrics.resource import QualtricsResource
from assets.warehouse.partitions import HISTORY_START

STAMP = "%Y%m%dT%H%M%SZ"
_FILE = re.compile(r"qualtrics_(?P<survey>SV_\w+?)_(?P<start>\d{8}T\d{6}Z|all)_(?P<end>\d{8}T\d{6}Z)\.csv$")


class QualtricsSyncConfig(dg.Config):
    """``history_start``: the first export of a survey starts here (ISO date)."""

    history_start: str = HISTORY_START


def last_export_end(folder: Path, survey_id: str) -> datetime | None:
    """Where the newest export file of ``survey_id`` in ``folder`` ends."""
    ends = [datetime.strptime(m["end"], STAMP) for p in folder.glob(f"qualtrics_{survey_id}_*.csv")
            if (m := _FILE.match(p.name)) and m["survey"] == survey_id]
    return max(ends, default=None)


@dg.asset(
    key=["landing", "qualtrics__responses"],
    group_name="qualtrics",
    kinds={"qualtrics", "csv"},
    retry_policy=API_ASSET_RETRY_POLICY,
)
def qualtrics_responses(context: dg.AssetExecutionContext, config: QualtricsSyncConfig,
                        qualtrics: QualtricsResource, landing: LandingFolderResource) -> dg.MaterializeResult:
    """Responses of the Qualtrics surveys in QUALTRICS_SURVEY_IDS recorded since the last
    export, written to the landing folder as qualtrics_<surveyId>_<from>_<to>.csv through
    the response-export API (start, poll, download, unzip); the landing loader reads them."""
    written, responses = [], {}
    with failing_clearly():
        for survey_id in qualtrics.surveys:
            start = last_export_end(landing.folder, survey_id) or datetime.fromisoformat(config.history_start)
            data, end = qualtrics.export_responses(survey_id, start, log=context.log.warning)
            lines = max(data.rstrip(b"\r\n").count(b"\n") - 2, 0)  # below the three header rows
            responses[survey_id] = lines
            if lines == 0:
                context.log.info(f"{survey_id}: no responses recorded since {start:%Y-%m-%d %H:%M} UTC")
                continue
            name = f"qualtrics_{survey_id}_{start:{STAMP}}_{end:{STAMP}}.csv"
            hidden = landing.folder / f".{name}.part"
            hidden.write_bytes(data)
            os.replace(hidden, landing.folder / name)
            written.append(name)
            context.log.info(f"{survey_id}: {lines} lines of responses recorded {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC "
                             f"-> {name}")
    return dg.MaterializeResult(metadata={"files": dg.MetadataValue.json(written),
                                          "lines_by_survey": dg.MetadataValue.json(responses)})


qualtrics_sync_job = dg.define_asset_job(
    "qualtrics_sync", selection=dg.AssetSelection.groups("qualtrics"),
    description="Export new Qualtrics responses into the landing folder (the landing sensor then loads them).",
    executor_def=dg.in_process_executor,
)


@dg.schedule(job=qualtrics_sync_job, cron_schedule="30 1 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def qualtrics_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Exports new Qualtrics responses at 01:30 UTC, before the nightly run; off until you
    turn it on (it needs QUALTRICS_URL, QUALTRICS_API_TOKEN and QUALTRICS_SURVEY_IDS)."""
    return dg.RunRequest()
