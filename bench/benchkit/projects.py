"""Scratch projects: a synthetic story shaped like the sample story (bench/noop.py's generator), imported, its manifest
written and built once with the stub provider, in <toolchain root>/bench/out/n<targets>/ — so each revision builds and
no-ops its own projects with its own dodo.py.

A built project is reused when its story export is byte-identical and it was built by the same kind of run (the
marker `bench-built.json` is written after the first build succeeded); the manifest is then written again by the
current code and a catch-up build runs, so a no-op is really a no-op of the code measured. The first build is run with
its RSS sampled; that measurement is kept in the marker together with the digest of the code that made it."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from noop import synthetic_export

from .timing import Run, Sample, SampledRun, sampled, timed
from .toolchain import REPO, Toolchain

ASSETS_REL = "apps/story-tree-ui/public/generated"
PLAIN_DODO = REPO / "bench" / "plain_dodo.py"  # the plain-doit baseline: independent of storytree's revision
MARKER = "bench-built.json"
MARKER_FORMAT = 2  # 2: peaks from VmHWM (format 1 kept ru_maxrss, which counts the bench's own RSS)


@dataclass
class FirstBuild:
    """The first stub build of a project: what the memory row reports."""

    code: str  # digest of the storytree_build that built it
    measured_at: str
    workers: int
    targets: int
    wall: float
    cpu: float
    rss_kib: int  # its own peak (VmHWM sampled; ru_maxrss only when it ended before the first sample)
    samples: list[Sample] = field(default_factory=list)
    this_run: bool = False  # made by this bench run (not read back from the marker)

    @classmethod
    def from_run(cls, code: str, workers: int, targets: int, result: SampledRun) -> "FirstBuild":
        return cls(code, time.strftime("%Y-%m-%d %H:%M %Z"), workers, targets, result.run.wall, result.run.cpu,
                   result.peak_kib or result.run.rss_kib, result.samples, this_run=True)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("this_run")
        return data

    @classmethod
    def from_json(cls, data: dict) -> "FirstBuild":
        samples = [Sample(**s) for s in data.pop("samples", [])]
        return cls(**data, samples=samples)


@dataclass
class Project:
    toolchain: Toolchain
    n: int
    proj: Path
    story_id: str
    targets: int = 0
    reused: bool = False
    first_build: FirstBuild | None = None

    @property
    def manifest(self) -> Path:
        return self.proj / "manifests" / f"{self.story_id}.yaml"

    @property
    def assets(self) -> Path:
        return self.proj / ASSETS_REL

    def env(self, **extra: str) -> dict[str, str]:
        return self.toolchain.env(STORYTREE_ROOT=str(self.proj), **extra)

    def run(self, argv: list[str], **extra_env: str) -> Run:
        return timed(argv, self.proj, self.env(**extra_env))

    # -- the commands the rows measure -----------------------------------------------------------
    def noop_argv(self) -> list[str]:
        return [self.toolchain.doit, f"story:{self.story_id}", "provider=stub"]

    def plain_argv(self) -> list[str]:
        return [self.toolchain.python, str(PLAIN_DODO), f"story:{self.story_id}", "provider=stub"]

    def dryrun_all_argv(self, *extra: str) -> list[str]:
        """provider=gemini makes every target out of date ("provider changed"): the dry-run lists all of them, each
        with its reason and cost; nothing is called and no key is needed."""
        return [self.toolchain.doit, "dryrun", *extra, f"story:{self.story_id}", "provider=gemini"]

    def manifest_argv(self) -> list[str]:
        return [self.toolchain.storytree, "manifest", self.story_id]

    def build_argv(self, workers: int) -> list[str]:
        return [self.toolchain.doit, "--process", str(workers), "-P", "thread", f"story:{self.story_id}", "provider=stub"]

    # -- what their output must say ----------------------------------------------------------------
    def check_noop(self, run: Run) -> str | None:
        if run.rc != 0:
            return f"exit code {run.rc}"
        if not re.search(r"storytree: 0 built, .*\b0 failed", run.out) or f"{self.targets} up to date" not in run.out:
            return f"not a no-op of {self.targets} targets"
        return None

    def check_plain(self, run: Run) -> str | None:
        """doit's console reporter: `-- task` up to date, `.  task` executed; every asset task and the gallery."""
        lines = run.out.splitlines()
        fresh = sum(1 for line in lines if line.startswith("-- "))
        ran = sum(1 for line in lines if line.startswith(". "))
        if run.rc != 0 or fresh != self.targets + 1 or ran:
            return f"plain doit is not a no-op (rc {run.rc}, {fresh} up to date, {ran} ran)"
        return None

    def check_dryrun_all(self, run: Run) -> str | None:
        if run.rc != 0 or f"{self.targets} would run" not in run.out:
            return f"the dry-run did not list all {self.targets} targets (rc {run.rc})"
        return None


def doit_tables(root: Path) -> str:
    """Only the [tool.doit*] tables of a revision's pyproject.toml (backend, dep_file, plugins), if it has any."""
    keep, kept = False, []
    for line in (root / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            keep = line.startswith("[tool.doit")
        if keep:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _sync_files(tc: Toolchain, proj: Path, prompts_too: bool) -> None:
    """dodo.py and the doit config every run; templates and system prompts only for a new project or with --resync
    (a changed template makes every key frame and video out of date)."""
    for folder in ("templates", "system_prompts") if prompts_too else ():
        shutil.rmtree(proj / folder, ignore_errors=True)
        shutil.copytree(tc.root / folder, proj / folder)
    shutil.copy2(tc.root / "dodo.py", proj / "dodo.py")
    (proj / "pyproject.toml").write_text(doit_tables(tc.root), encoding="utf-8")


def _must(project: Project, what: str, run: Run) -> Run:
    failed = re.search(r"\b([1-9]\d*) failed\b", run.out)
    if run.rc != 0 or failed:
        raise SystemExit(f"[{project.toolchain.name} n{project.n}] {what} failed (rc {run.rc}) in {project.proj}:\n"
                         f"{run.out[-3000:]}")
    return run


def prepare(tc: Toolchain, n: int, *, reuse: bool = True, workers: int = 4, resync: bool = False,
            folder: str | None = None, plain: bool = True, build: bool = True, log=print) -> Project:  # noqa: ANN001
    """The built scratch project of n targets for this toolchain (see the module docstring); with build=False a
    new project with the story imported and its manifest written, nothing built."""
    reuse = reuse and build
    story_id, export = synthetic_export(n)
    project = Project(tc, n, tc.out / (folder or f"n{n}"), story_id)
    proj = project.proj
    export_text = json.dumps(export, ensure_ascii=False, indent=1)
    export_file = proj / "story-export.json"
    marker = proj / MARKER
    project.reused = (reuse and marker.exists() and export_file.exists()
                      and export_file.read_text(encoding="utf-8") == export_text)
    tag = f"[{tc.name} n{n}]"
    if not project.reused:
        shutil.rmtree(proj, ignore_errors=True)
        (proj / "manifests").mkdir(parents=True)
        project.assets.mkdir(parents=True)
    _sync_files(tc, proj, prompts_too=resync or not project.reused)
    if not project.reused:
        export_file.write_text(export_text, encoding="utf-8")
        _must(project, "storytree import", project.run([tc.storytree, "import", str(export_file)]))
    made = _must(project, "storytree manifest", project.run(project.manifest_argv()))
    project.targets = sum(1 for line in project.manifest.read_text(encoding="utf-8").splitlines()
                          if line.startswith("- task: "))
    log(f"{tag} {'reused; ' if project.reused else ''}manifest {made.wall:.2f}s, {project.targets} targets, "
        f"{project.manifest.stat().st_size / 1e6:.1f} MB")
    if not build:
        return project
    result = sampled(project.build_argv(workers), proj, project.env())
    _must(project, "build", result.run)
    last = result.run.out.strip().splitlines()[-1] if result.run.out.strip() else ""
    if project.reused:
        stored = json.loads(marker.read_text(encoding="utf-8"))
        if stored.get("format") == MARKER_FORMAT and stored.get("first_build"):
            project.first_build = FirstBuild.from_json(stored["first_build"])
        log(f"{tag} catch-up build {result.run.wall:.1f}s: {last}")
    else:
        project.first_build = FirstBuild.from_run(tc.code_digest(), workers, project.targets, result)
        marker.write_text(json.dumps({"format": MARKER_FORMAT, "story_id": story_id,
                                      "first_build": project.first_build.to_json()}),
                          encoding="utf-8")
        log(f"{tag} first build ({workers} threads) {result.run.wall:.1f}s, peak RSS "
            f"{project.first_build.rss_kib / 1024:.0f} MiB: {last}")
    if plain:
        # The plain-doit baseline records its own state (config_changed values, file_dep signatures) in its own doit
        # database on the same assets: its first run executes every task (each only checks its target exists), a
        # later one whatever the catch-up build rewrote.
        primed = timed(project.plain_argv(), proj, project.env())
        if primed.rc != 0:
            raise SystemExit(f"{tag} priming plain doit failed:\n{primed.out[-3000:]}")
        log(f"{tag} plain-doit baseline primed in {primed.wall:.1f}s")
    return project


def fresh_first_build(tc: Toolchain, n: int, workers: int, log=print) -> FirstBuild:  # noqa: ANN001
    """A first build of n targets in a throwaway project (for the memory row when the kept project was built earlier
    by other code); the project is deleted afterwards."""
    project = prepare(tc, n, reuse=False, workers=workers, folder=f"n{n}-first-build", plain=False, log=log)
    shutil.rmtree(project.proj, ignore_errors=True)
    assert project.first_build is not None
    return project.first_build
