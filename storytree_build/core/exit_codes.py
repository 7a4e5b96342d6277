"""Every exit code of `doit` (with storytree's tasks) and of `storytree`, each with one meaning. The README's table is
printed from this one (a test keeps them equal), so a script can rely on a code meaning one thing."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    DOIT_ERROR = 2
    REFUSED = 3
    WAITING_FOR_REVIEW = 4
    CHECK_FOUND_WORK = 5
    TRY_LATER = 75
    INTERRUPTED = 130
    TERMINATED = 143

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    ExitCode.OK: "success: everything selected is built or up to date, or the command did what it was asked",
    ExitCode.FAILED: "something failed: a target could not be built, or bad input, configuration or a store error "
                     "(the message names it and says what to do); finished targets are kept",
    ExitCode.DOIT_ERROR: "doit itself could not run a task (doit's own error, printed by doit)",
    ExitCode.REFUSED: "refused before anything started (nothing paid): over `max_cost`, no consent to pay (no "
                      "terminal and neither `max_cost=` nor `yes=1`, or not `y` at `Proceed? [y/N]`), a paid build "
                      "without its provider's API key, a bad option, setting or task name, more than one story, "
                      "`--download-link` misuse, a frozen build (CI, `frozen=1`) whose manifest is behind the story "
                      "store",
    ExitCode.WAITING_FOR_REVIEW: "only videos are left, waiting for review of their key frames "
                                 "(`[review] key_frames = \"required\"`); everything else is built",
    ExitCode.CHECK_FOUND_WORK: "a check found work to do: `doit dryrun --check` (something would run), "
                               "`storytree manifest --check` (a manifest drifted from the store), `storytree verify` "
                               "(problems found)",
    ExitCode.TRY_LATER: "try again later: a per-day quota ran out, or batch jobs are still running; the same command "
                        "later continues",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C): no new paid call started, calls in flight finished and were "
                          "recorded (or were abandoned and named: a second Ctrl-C, the grace period); a re-run "
                          "resumes",
    ExitCode.TERMINATED: "terminated (SIGTERM): as for Ctrl-C; finished targets are kept and a re-run resumes",
}


def markdown_table() -> str:
    """The README's table of exit codes."""
    rows = "\n".join(f"| {code.value} | `{code.name}` | {code.meaning} |" for code in ExitCode)
    return "| code | name | meaning |\n|---|---|---|\n" + rows + "\n"
