"""The doit command line, read once at task-load time, with doit's own option parser: which command runs, which
task names were given (they choose the story), and the one misuse doit cannot report well (a `--download-link`
value containing `=`, which doit takes for a variable).

Everything doit parses itself (`-a`, `-s`, `--continue`, task options) reaches the `run` command (cmd_run.py) as
parsed values; this module only serves what must be known before any task exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from doit.cmd_base import DodoTaskLoader, DoitCmdBase
from doit.cmdparse import CmdOption, CmdParse, CmdParseError
from doit.exceptions import InvalidCommand

from ..core import naming
from .flags import run_options

LINK_OPTION = "--download-link"


@dataclass(frozen=True)
class Invocation:
    command: str  # run | dryrun | list | ...
    names: list[str] = field(default_factory=list)  # positional task names, targets and globs (task options removed)
    link_task: str | None = None  # the one `video:` task a `--download-link` applies to
    dry_run: bool = False  # `doit -n …`: the run command lists, builds nothing

    @property
    def builds(self) -> bool:
        return self.command == "run" and bool(self.names) and not self.dry_run

    def named_stories(self) -> list[str]:
        """Story ids named by `story:<id>` or `gallery:<id>` (not by globs)."""
        return sorted({n.split(":", 1)[1] for n in self.names if n.startswith(("story:", "gallery:")) and "*" not in n})


def parse(argv: list[str], commands: set[str]) -> Invocation:
    # doit takes every NAME=VALUE argument that does not start with "-" for a variable (DoitMain.process_args).
    args = [a for a in argv if a.startswith("-") or "=" not in a]
    try:
        _, args = CmdParse([CmdOption(o) for o in DodoTaskLoader.cmd_options]).parse_only(args)
    except CmdParseError:
        pass
    command = "run"
    if args and args[0] in commands:
        command, args = args[0], args[1:]
    options = _options(command)
    dry_run = False
    if options is not None:
        try:
            values, args = CmdParse([CmdOption(o) for o in options]).parse_only(args)
            dry_run = command == "run" and bool(values.get("dry_run"))
        except CmdParseError:
            pass  # doit reports it with its own message
    names = [a for a in args if not a.startswith("-")]
    link_task = _link_task(argv, names) if any(a.split("=", 1)[0] == LINK_OPTION for a in argv) else None
    if link_task is not None:
        names = [n for n in names if n == link_task]
    return Invocation(command, names, link_task, dry_run)


def _options(command: str) -> tuple | None:
    if command == "run":
        return DoitCmdBase.base_options + run_options()  # make's -n and -j (flags.py), as the run command has them
    if command == "dryrun":
        from .cmd_dryrun import DryRun

        return DoitCmdBase.base_options + DryRun.cmd_options
    return None  # other doit commands: their positionals are task names too, options are dropped below


def _link_task(argv: list[str], names: list[str]) -> str:
    """`--download-link` fills exactly one shot's video: the only task named must be one `video:<scenelet>_<n>`."""
    uses = [i for i, a in enumerate(argv) if a == LINK_OPTION or a.startswith(LINK_OPTION + "=")]
    separate = [i + 1 for i in uses if argv[i] == LINK_OPTION]
    if any(i < len(argv) and "=" in argv[i] and not argv[i].startswith("-") for i in separate):
        raise InvalidCommand("a link containing '=' (every Gemini link ends in ?alt=media) must be attached to the "
                             "option: `doit video:<scenelet-id>_<n> --download-link=URL`.")
    values = {argv[i] for i in separate if i < len(argv)}
    named = [n for n in names if n not in values]
    if len(uses) != 1 or len(named) != 1 or naming.split_task(named[0])[0] != "video" or "*" in named[0]:
        raise InvalidCommand(
            "--download-link applies to exactly one shot: `doit video:<scenelet-id>_<n> --download-link=URL` "
            "(no other tasks, groups or wildcards in the same command).")
    return named[0]
