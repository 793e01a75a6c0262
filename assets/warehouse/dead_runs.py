"""Runs whose worker process died give the warehouse pool's slot back by themselves.

A step holds the one slot of the `duckdb_warehouse` pool (assets/warehouse/pool.py) in the
instance's storage until it ends. A run worker killed mid-step (kill -9, the OOM killer, a
reboot) never frees it, and every later step waits for it forever ("Step blocked by limit for
pool duckdb_warehouse"). Dagster frees the slots of runs that ended (`run_monitoring:
free_slots_after_run_end_seconds` in deploy/dagster.yaml), and the code server that launched a
run marks it failed when its process dies; but a run started from a shell (`dagster job
execute`, `dagster asset materialize`) has nobody watching it and stays STARTED for ever.

So every run's worker records itself in the run's ``psafe/run_worker`` tag (machine, process id
and the process's start time), and runs whose recorded worker is gone from this machine are
marked failed and their slots freed: by each run before its first step waits for the pool
(:func:`freeing_dead_run_slots` around the jobs' executors), and every 30 s by the
:data:`dead_run_workers_sensor` wherever dagster-daemon (or `dagster dev`) runs. A worker on
another machine or in another container is never judged.
"""

import json
import os
import socket
from collections.abc import Iterator

import dagster as dg
import psutil

RUN_WORKER_TAG = "psafe/run_worker"
# A process's start time as the OS reports it, rounded differently by different calls.
START_TIME_TOLERANCE_SECONDS = 1.0


def _machine() -> str:
    """This machine, and on Linux this process-id namespace (a container sharing the host's
    name still has its own process ids)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()


def this_worker() -> dict:
    """What identifies this process as a run's worker: machine, pid, start time."""
    return {"machine": _machine(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def worker_is_gone(worker: dict) -> bool:
    """Whether the recorded ``worker`` is known to be dead: on this machine, and its process is
    gone, a zombie, or a later process that reuses its id. A worker elsewhere is never gone."""
    if worker.get("machine") != _machine():
        return False
    try:
        process = psutil.Process(worker["pid"])
        return (
            process.status() == psutil.STATUS_ZOMBIE
            or abs(process.create_time() - worker["started"]) > START_TIME_TOLERANCE_SECONDS
        )
    except psutil.NoSuchProcess:
        return True


def free_slots_of_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose worker is gone, free the pool slots (and queued
    claims) of those runs and of finished runs whose worker is gone, and say what was done; name
    each unfinished run holding a slot that recorded no worker, and what ends it."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    run_ids = storage.get_concurrency_run_ids()
    if not run_ids:
        return []
    done = []
    for run in instance.get_runs(dg.RunsFilter(run_ids=sorted(run_ids))):
        recorded = run.tags.get(RUN_WORKER_TAG)
        if recorded is None:
            # Started by a release before the tag (an upgrade), or by code outside this
            # project's executor: nothing says whether it lives, and it may hold the slot for ever.
            if not run.is_finished:
                done.append(f"run {run.run_id} ({run.status.value}) holds a warehouse pool slot and recorded no "
                            f"worker ({RUN_WORKER_TAG}: started by an earlier release, or outside this pipeline's "
                            "executor), so it cannot be judged dead from here; if it is no longer running, end it: "
                            f"Terminate it in the UI (force termination), or `dagster run delete -f {run.run_id}` "
                            "(README, \"When a run dies\")")
            continue
        worker = json.loads(recorded)
        if not worker_is_gone(worker):
            continue
        if not run.is_finished:
            instance.report_run_failed(
                run,
                f"The run's worker (pid {worker['pid']} on {worker['machine']}) is gone: killed or "
                "crashed. Marked failed so its warehouse pool slot can be freed; the tables keep what "
                "its last finished steps committed, and the next run rebuilds the rest.",
            )
        storage.free_concurrency_slots_for_run(run.run_id)
        done.append(f"freed the warehouse pool slot of run {run.run_id}, whose worker "
                    f"(pid {worker['pid']}) is gone")
    return done


class _FreeingDeadRunSlotsFirst(dg.Executor):
    """An executor that records the run's worker and frees dead runs' slots, then runs the
    steps with the executor it wraps."""

    def __init__(self, executor: dg.Executor):
        self._executor = executor

    @property
    def retries(self):
        return self._executor.retries

    @property
    def step_dependency_config(self):
        return self._executor.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator:
        instance = plan_context.instance
        instance.add_run_tags(plan_context.run_id, {RUN_WORKER_TAG: json.dumps(this_worker())})
        for message in free_slots_of_dead_runs(instance):
            plan_context.log.warning(f"Before starting: {message}.")
        yield from self._executor.execute(plan_context, execution_plan)


def freeing_dead_run_slots(executor_def: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """``executor_def`` (same name and config), whose runs first record their worker in the
    ``psafe/run_worker`` tag and free the warehouse pool slots of runs whose worker is gone."""
    return dg.ExecutorDefinition(
        name=executor_def.name,
        config_schema=executor_def.config_schema,
        requirements=executor_def.get_requirements,
        executor_creation_fn=lambda init_context: _FreeingDeadRunSlotsFirst(
            executor_def.executor_creation_fn(init_context)
        ),
        description=executor_def.description,
    )


@dg.sensor(
    name="dead_run_workers",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def dead_run_workers_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Every 30 s, marks failed the runs whose worker process died on this machine (a run
    started with `dagster job execute` and killed) and frees their warehouse pool slots, so
    queued and later runs do not wait for them for ever. Requests no runs."""
    done = free_slots_of_dead_runs(context.instance)
    return dg.SkipReason("; ".join(done) if done else "every run holding a warehouse slot has a live worker")
