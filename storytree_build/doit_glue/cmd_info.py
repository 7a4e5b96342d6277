"""The `info` command: doit's own, with storytree's status of a target instead of doit's. doit judges from its own
database (a cache storytree never decides from), so it could call a built, recorded target "run"; here the status
and its reason come from the record, as a build decides (core/status.py), with what building it would cost.
Registered as the `info` plugin in pyproject.toml; any other task (or project) gets doit's own `info`."""

from __future__ import annotations

from typing import Any

from doit.cmd_info import Info as DoitInfo

from .tasks import session_of


class Info(DoitInfo):
    name = "info"

    def _execute(self, pos_args: list[str], hide_status: bool = False) -> Any:
        session = session_of(self.task_list)
        task = pos_args[0] if len(pos_args) == 1 else None
        if session is None or task not in session.targets:
            return super()._execute(pos_args, hide_status=hide_status)
        super()._execute(pos_args, hide_status=True)  # doit's fields, without its status
        if hide_status:
            return 0
        status = session.facts.status(task)
        if status.current:
            self.outstream.write(f"\nstatus     : up-to-date (storytree: {status.reason})\n")
            return 0
        cost = session.pricing.cost(session.target(task))
        price = "unknown" if cost is None else f"~{cost:.2f} {session.settings.prices.currency}"
        self.outstream.write(f"\nstatus     : run (storytree: {status.reason}; building it costs {price} with "
                             f"provider {session.provider_name}; `doit -n {task}` shows what it sends)\n")
        return 1
