"""Run `dagster` commands fast: each in its own process, forked from a launcher that has imported
the CLI and the definitions once (the `dagster` command's own ``main``, the same arguments), so a
command does not pay the 10-20 s an interpreter takes to import them."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Step processes forked from a server that has imported the definitions start in about half
# the time of fresh interpreters.
FORKSERVER = {"execution": {"config": {"multiprocess": {
    "start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}}}}

# Reads `dagster` argument lists, one JSON line each, and forks a process running the `dagster`
# command with them; prints each process's id. Children are reaped as they end (SIGCHLD ignored).
LAUNCHER = """
import json, os, signal, sys
import pipelines.definitions
from dagster._cli import main
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
for line in sys.stdin:
    command = json.loads(line)
    pid = os.fork()
    if pid == 0:
        log = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.argv = ["dagster", *command["args"]]
        try:
            main()
        except SystemExit as exit:
            os._exit(exit.code if isinstance(exit.code, int) else 1)
        os._exit(0)
    print(pid, flush=True)
"""


class Launcher:
    """A process that forks `dagster` commands (see LAUNCHER) in ``env``."""

    def __init__(self, env: dict[str, str]):
        self._process = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=REPO, env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def start(self, args: list[str], log: Path) -> int:
        """Start `dagster <args>` with its output in ``log``; return its process id."""
        self._process.stdin.write(json.dumps({"args": args, "log": str(log)}) + "\n")
        self._process.stdin.flush()
        return int(self._process.stdout.readline())

    def run(self, args: list[str], log: Path, timeout: float = 120) -> None:
        """Run `dagster <args>` to its end (the exit status is not known here: read ``log``)."""
        pid = self.start(args, log)
        deadline = time.monotonic() + timeout
        while alive(pid):
            assert time.monotonic() < deadline, f"`dagster {' '.join(args)}` still running after {timeout} s"
            time.sleep(0.1)

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
