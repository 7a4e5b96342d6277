"""make's flags for doit's `run`: `-n` is a dry run, `-j N` the number of workers (doit's `--process N`, whose short
flag was `-n`), threads the default kind of worker; and the refusal of `-n N`, which used to mean N workers.

The option tables here replace doit's in the `run` command (cmd_run.py) and in the load-time parse (argv.py).
"""

from __future__ import annotations

import copy
import getopt
import re
from collections.abc import Iterable
from typing import Any

from doit.cmd_run import Run as DoitRun
from doit.cmdparse import CmdOption, CmdParse

DRY_RUN = "dry_run"


def run_description() -> str:
    """`doit help run`'s description: make's flags, then every storytree variable (settings/sources.py)."""
    from ..settings.sources import run_variables_help

    return ("make's flags: `-n` lists what would be built and what it would cost (as `doit dryrun`) and builds "
            "nothing; `-j N` builds with N worker threads.\n\n" + run_variables_help())

opt_dry_run: dict[str, Any] = {
    "name": DRY_RUN, "short": "n", "long": "dry-run", "type": bool, "default": False,
    "help": "dry run, as make's -n: list what would be built, why, what it references and what it would cost "
            "(the listing of `doit dryrun`); builds, calls and pays for nothing [default: %(default)s]"}

opt_jobs: dict[str, Any] = {
    "name": "num_process", "short": "j", "long": "process", "type": int, "default": 0, "metavar": "N",
    "help": "number of parallel workers, as make's -j (`-j 4` or `--process 4`; `-n` is the dry run) "
            "[default: %(default)s, one target at a time]"}

# Threads, not processes: a build waits on paid network calls (I/O), and a session's SQLite connections, locks and
# HTTP client must not be copied into forked children, whose results (records, spend, summary) would stay there.
opt_parallel_type: dict[str, Any] = {
    "name": "par_type", "short": "P", "long": "parallel-type", "type": str, "default": "thread",
    "help": "kind of parallel worker for -j: 'thread' (the default; storytree builds run only in threads) or "
            "'process' (python multiprocessing; refused for storytree tasks) [default: %(default)s]"}


def run_options() -> tuple[dict[str, Any], ...]:
    """doit's `run` options with make's `-n` (listed first) and `-j`."""
    replaced = {"num_process": opt_jobs, "par_type": opt_parallel_type}
    return (opt_dry_run,) + tuple(replaced.get(option["name"], option) for option in DoitRun.cmd_options)


def workers_meant(args: list[str], options: Iterable[CmdOption]) -> str | None:
    """The number given right after a `-n` (`-n 4`, `-n4`, `-an 4`, `--dry-run 4`, `--dry-run=4`, `--dry 4`), which
    asked for workers under doit's old meaning of `-n`; None when no `-n` is followed by a number.

    doit's own parser would take `-n 4` as a dry run of a task named "4", and fail on `-n4`. Here the options are
    parsed once more by the same getopt rules, with `-n` taking a value, so whatever follows it shows up as that
    value."""
    probe = []
    for option in options:
        option = copy.copy(option)
        if option.name == DRY_RUN:
            option.type = str
        probe.append(option)
    parser = CmdParse(probe)
    try:
        given, _ = getopt.getopt(args, parser.get_short(), parser.get_long())
    except getopt.GetoptError:
        return None  # not a `-n N` form; doit's own parse reports what is wrong
    dry_run = {"-n", "--dry-run"}
    for flag, value in given:
        number = re.fullmatch(r"=?(\d+)", value)
        if flag in dry_run and number:
            return number.group(1)
    return None


def refusal(workers: str) -> str:
    return f"`-n` is a dry run here (make-style); for {workers} workers use `-j {workers}`"
