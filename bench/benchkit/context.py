"""What every row gets: the options, the toolchains, the scratch projects (prepared once, on first use) and a place
for the raw figures that --json writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .projects import Project, prepare
from .toolchain import Toolchain


@dataclass
class Context:
    current: Toolchain
    baseline: Toolchain | None
    sizes: list[int]
    reps: int
    extra_reps: int  # repetitions of the slow commands (Snakemake, dry-run listings, builds)
    workers: int  # doit -n of first builds
    reuse: bool
    resync: bool
    log: Callable[[str], None] = print
    projects: dict[tuple[str, int], Project] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def project(self, tc: Toolchain, n: int) -> Project:
        key = (tc.name, n)
        if key not in self.projects:
            self.projects[key] = prepare(tc, n, reuse=self.reuse, workers=self.workers, resync=self.resync,
                                         plain=tc is self.current, log=self.log)
        return self.projects[key]

    @property
    def toolchains(self) -> list[Toolchain]:
        return [self.current] + ([self.baseline] if self.baseline else [])
