"""Processes as claim owners: a pid that runs on this machine, and one that no longer does."""

from __future__ import annotations

import subprocess
import sys


def dead_pid() -> int:
    """The pid of a process that ran on this machine and has exited (reaped: nothing answers to it)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
