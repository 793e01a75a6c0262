"""Terminal progress for a Dagster run: a bar of finished steps instead of Dagster's DEBUG
stream, warnings and errors in full, and the whole Dagster log in a file."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TextIO

import dagster as dg

BAR_WIDTH = 30


class StepProgress(logging.Handler):
    """Counts the steps of a run as they succeed, fail or are skipped and redraws one status
    line; records at WARNING and above are printed whole (with the error of a failed step),
    above the status line. Steps not run because an upstream step failed are reported by
    Dagster as errors, not counted."""

    def __init__(self, total_steps: int, stream: TextIO | None = None):
        super().__init__(logging.DEBUG)
        self.total_steps = total_steps
        self.stream = stream or sys.stderr
        self.finished = 0
        self.failed: list[str] = []
        self.started = time.monotonic()
        # On a terminal the line is redrawn in place; in a log or CI output, one line per step.
        self.redraw = self.stream.isatty()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", {})
        event = meta.get("dagster_event")
        if record.levelno >= logging.WARNING:
            message = meta.get("orig_message") or record.getMessage()
            error = getattr(event.event_specific_data, "error", None) if event else None
            while error is not None and error.cause is not None:  # the user's exception, not Dagster's wrapper
                error = error.cause
            if error is not None:
                message += " " + error.message.strip()
            self._write(f"{record.levelname}: {message}")
        if event is None or event.event_type not in (
            dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED
        ):
            return
        self.finished += 1
        if event.event_type != dg.DagsterEventType.STEP_SUCCESS:
            self.failed.append(event.step_key)
        self._status(f"{event.step_key} {event.event_type_value.removeprefix('STEP_').lower()}")

    def _status(self, last: str) -> None:
        done = BAR_WIDTH * self.finished // max(self.total_steps, 1)
        line = (f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {self.finished}/{self.total_steps} steps, "
                f"{time.monotonic() - self.started:.0f} s, {len(self.failed)} failed | {last}")
        if self.redraw:
            self.stream.write("\r\033[K" + line + ("\n" if self.finished == self.total_steps else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _write(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.redraw else "") + text + "\n")
        self.stream.flush()


def with_progress(
    job: dg.JobDefinition, log_file: Path, stream: TextIO | None = None
) -> tuple[dg.JobDefinition, dict]:
    """``job`` logging to a ``StepProgress`` on ``stream`` (stderr) and, in full, to ``log_file``; and the
    run config section that turns those two loggers on (in place of Dagster's console logger)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    progress = StepProgress(len(job.nodes_in_topological_order), stream)

    def python_logger(name: str, handler: logging.Handler) -> dg.LoggerDefinition:
        def build(_init_context) -> logging.Logger:
            logger = logging.getLogger(f"psafe.{name}")
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            logger.handlers = [handler]
            return logger

        return dg.LoggerDefinition(build, description=f"psafe {name} logger")

    loggers = {"progress": python_logger("progress", progress), "log_file": python_logger("log_file", file_handler)}
    return job.with_logger_defs(loggers), {"loggers": {name: {} for name in loggers}}
