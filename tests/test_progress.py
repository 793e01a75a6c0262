"""The CLI's progress display: steps counted from Dagster's events, warnings and errors shown,
everything in the log file."""

import io

import dagster as dg

from pipelines.progress import with_progress


@dg.asset
def upstream(context: dg.AssetExecutionContext) -> int:
    context.log.warning("3 rows had no team")
    return 1


@dg.asset
def broken(upstream: int) -> int:
    raise ValueError("the survey export has no 'team' column")


@dg.asset
def downstream(broken: int) -> int:
    return broken


def test_progress_counts_steps_and_shows_warnings_and_errors_but_not_debug(tmp_path):
    job = dg.Definitions(assets=[upstream, broken, downstream]).resolve_implicit_global_asset_job_def()
    stream = io.StringIO()
    job, logger_config = with_progress(job, tmp_path / "run.log", stream)

    result = job.execute_in_process(run_config=logger_config, raise_on_error=False)

    shown = stream.getvalue()
    assert not result.success
    assert "WARNING: 3 rows had no team" in shown
    assert "ERROR:" in shown and "the survey export has no 'team' column" in shown
    assert "1/3 steps" in shown and "1 failed | broken failure" in shown
    assert "Dependencies for step downstream failed" in shown
    assert "DEBUG" not in shown
    log = (tmp_path / "run.log").read_text()
    assert "DEBUG" in log and "STEP_SUCCESS" in log and "STEP_FAILURE" in log
