"""Service processes for tests (RQ workers, schedulers, web servers), started in their own session
so they can be stopped with everything they started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from marketplace import REPO_ROOT

BIN = Path(sys.executable).parent


def start(args: list[str], env: dict) -> subprocess.Popen:
    """args[0] names a command of this virtualenv (rq, flask, gunicorn)."""
    return subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=REPO_ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
