"""Which runs' warehouse slots are freed as dead, on a real instance (SQLite storage in
tmp_path) with the pool limited as in deploy/dev/dagster.yaml: a run whose recorded worker
process has exited is marked failed and its slot freed; a run whose worker lives, whose worker
is on another machine, or that recorded no worker keeps its slot (the last named, with what
ends it: a run of a release before the tag, fifth adversarial trial D2). The whole path, with real
`kill -9`s of nightly runs, is tests/test_killed_runs.py."""

import json
import os
import subprocess
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml

from assets.warehouse.dead_runs import RUN_WORKER_TAG, free_slots_of_dead_runs, this_worker, worker_is_gone
from assets.warehouse.pool import WAREHOUSE_POOL

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=yaml.safe_load(
            (REPO / "deploy" / "dev" / "dagster.yaml").read_text())) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        yield instance


def exited_worker() -> dict:
    """The identity of a process on this machine that has started and exited."""
    process = subprocess.Popen(["sleep", "0.2"])
    started = psutil.Process(process.pid).create_time()
    process.wait()
    return {**this_worker(), "pid": process.pid, "started": started}


def run_holding_the_slot(instance: dg.DagsterInstance, worker: dict | None) -> dg.DagsterRun:
    """A STARTED run whose step holds the warehouse slot, with ``worker`` recorded."""
    run = instance.create_run_for_job(dg.GraphDefinition(name="g").to_job(), run_id=None)
    if worker is not None:
        instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: json.dumps(worker)})
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name))
    claim = instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "step")
    assert claim.is_claimed
    return instance.get_run_by_id(run.run_id)


def holders(instance: dg.DagsterInstance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots}


def test_worker_identity():
    here = this_worker()
    assert here["pid"] == os.getpid() and not worker_is_gone(here)
    assert worker_is_gone(exited_worker())
    # The same pid started at another time is another process (the id was reused).
    assert worker_is_gone({**here, "started": here["started"] - 3600})
    # A worker on another machine (or in another container) is never judged from here.
    assert not worker_is_gone({**exited_worker(), "machine": "elsewhere"})


def test_only_a_run_whose_worker_is_gone_is_failed_and_freed(instance):
    dead = run_holding_the_slot(instance, exited_worker())
    assert free_slots_of_dead_runs(instance) == [
        f"freed the warehouse pool slot of run {dead.run_id}, whose worker (pid {json.loads(dead.tags[RUN_WORKER_TAG])['pid']}) is gone"
    ]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert holders(instance) == set()

    for worker in (this_worker(), {**exited_worker(), "machine": "elsewhere"}, None):
        kept = run_holding_the_slot(instance, worker)
        said = free_slots_of_dead_runs(instance)
        assert instance.get_run_by_id(kept.run_id).status == dg.DagsterRunStatus.STARTED
        assert holders(instance) == {kept.run_id}
        if worker is None:
            # A run of an earlier release (no tag) is named, with what ends it.
            [message] = said
            assert message.startswith(f"run {kept.run_id} (STARTED) holds a warehouse pool slot and recorded no worker")
            assert f"`dagster run delete -f {kept.run_id}`" in message
        else:
            assert said == []
        instance.event_log_storage.free_concurrency_slots_for_run(kept.run_id)
