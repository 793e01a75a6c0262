"""The nightly schedule and the landing-folder sensor, evaluated as the daemon would."""

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from assets.landing.resource import LandingFolderResource
from assets.landing.sensors import landing_files_sensor
from assets.report.resource import ReportFolderResource
from assets.warehouse.resource import WarehouseResource
from pipelines.definitions import defs
from pipelines.schedules import nightly_schedule
from pipelines.synthetic.org import OrgSpec, generate, write_landing

SETTLE_SECONDS = LandingFolderResource(path='.', hr_id_salt='salt').settle_seconds


def test_nightly_schedule_requests_the_whole_graph_at_two_utc():
    definitions = defs()
    assert definitions.resolve_schedule_def("nightly_schedule").job_name == "nightly"
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
        )
        [request] = nightly_schedule.evaluate_tick(context).run_requests
    assert request.job_name in (None, "nightly")
    ticks = cron_string_iterator(
        datetime(2026, 3, 28, 12, 0, tzinfo=UTC).timestamp(), nightly_schedule.cron_schedule,
        nightly_schedule.execution_timezone,
    )
    # Across the European change to summer time the run stays at 02:00 UTC.
    assert [next(ticks).isoformat() for _ in range(2)] == ["2026-03-29T02:00:00+00:00", "2026-03-30T02:00:00+00:00"]


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look modified ``seconds`` ago (a finished copy)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    write_landing(generate(OrgSpec(seed=3, n_teams=3, n_months=6)), folder)
    for path in folder.iterdir():
        age(path, 3600)
    return folder


def evaluate(instance, folder: Path, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"landing": LandingFolderResource(path=str(folder), hr_id_salt="salt")},
    )
    return landing_files_sensor(context), context.cursor


def test_sensor_requests_a_reload_for_new_then_changed_exports_only(landing):
    with dg.instance_for_test() as instance:
        first, cursor = evaluate(instance, landing, None)
        assert isinstance(first, dg.RunRequest)
        assert first.tags["psafe/changed_exports"] == (
            "hr_headcount.csv, hr_terminations.csv, identity_map.yml, survey_responses.csv, team_map.yml"
        )

        unchanged, same_cursor = evaluate(instance, landing, cursor)
        assert isinstance(unchanged, dg.SkipReason) and same_cursor == cursor

        survey = landing / "survey_responses.csv"
        survey.write_text(survey.read_text() + survey.read_text().splitlines()[-1] + "\n")  # one more response
        age(survey, 3600)
        changed, new_cursor = evaluate(instance, landing, cursor)
        assert isinstance(changed, dg.RunRequest) and changed.tags["psafe/changed_exports"] == "survey_responses.csv"
        assert changed.run_key != first.run_key and new_cursor != cursor

        (landing / "notes.txt").write_text("not an export")
        (landing / "survey_responses.csv.part").write_text("half a copy")
        (landing / ".~lock.survey.csv#").write_text("an editor's lock file")
        ignored, _ = evaluate(instance, landing, new_cursor)
        assert isinstance(ignored, dg.SkipReason)


def test_sensor_waits_for_a_file_still_being_copied(landing):
    with dg.instance_for_test() as instance:
        _, cursor = evaluate(instance, landing, None)
        age(landing / "hr_headcount.csv", SETTLE_SECONDS / 2)
        waiting, same_cursor = evaluate(instance, landing, cursor)
        assert isinstance(waiting, dg.SkipReason) and "hr_headcount.csv" in waiting.skip_message
        assert same_cursor == cursor
        age(landing / "hr_headcount.csv", SETTLE_SECONDS * 2)
        ready, _ = evaluate(instance, landing, cursor)
        assert isinstance(ready, dg.RunRequest)


def test_sensor_waits_for_an_xlsx_whose_copy_stopped_half_way(landing):
    """A half-copied workbook has no ZIP central directory: however long it has been
    still, it is not complete, and the sensor says why (the loaders apply the same rule)."""
    import openpyxl
    workbook = openpyxl.Workbook()
    workbook.active.append(["ID", "Start time", "Completion time"])
    whole = landing.parent / "whole.xlsx"
    workbook.save(whole)
    (landing / "forms.xlsx").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    age(landing / "forms.xlsx", 3600)
    with dg.instance_for_test() as instance:
        result, cursor = evaluate(instance, landing, None)
    assert isinstance(result, dg.SkipReason) and "forms.xlsx" in result.skip_message
    assert "central directory" in result.skip_message and cursor is None


def test_sensor_skips_a_missing_landing_folder(tmp_path):
    with dg.instance_for_test() as instance:
        result, cursor = evaluate(instance, tmp_path / "nowhere", None)
    assert isinstance(result, dg.SkipReason) and "does not exist" in result.skip_message and cursor is None


@pytest.mark.slow
def test_the_requested_run_reloads_the_landing_exports_and_their_dependants(landing, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        request, _ = evaluate(instance, landing, None)
        job = defs().resolve_job_def(landing_files_sensor.job_name)
        result = job.execute_in_process(
            instance=instance, tags=request.tags,
            resources={
                "landing": LandingFolderResource(path=str(landing), hr_id_salt="salt"),
                "duckdb": WarehouseResource(database=str(warehouse)),
                "report_folder": ReportFolderResource(path=str(tmp_path / "report")),
            },
            raise_on_error=False,
        )
    # Models that also need PagerDuty and Jira tables fail in this warehouse, which has none; the
    # dbt step that builds them fails with them, so the Python marts after it wait for a sync.
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert {"restricted/survey__responses", "raw/hr__headcount", "raw/hr__terminations", "raw/config__team_map",
            "staging/stg_config__team_map", "restricted/stg_survey__responses", "staging/stg_hr__headcount"} <= set(
        metadata)
    assert not result.success and "marts/fct_team_survey_waves" not in metadata
    assert not any(key.startswith(("raw/pagerduty", "raw/jira")) for key in metadata)
    survey_rows = len((landing / "survey_responses.csv").read_text().splitlines()) - 1
    assert metadata["restricted/survey__responses"]["responses"].value == survey_rows
    assert metadata["restricted/survey__responses"]["files"].value["survey_responses.csv"]["preset"] == "generic"
