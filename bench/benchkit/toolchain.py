"""Which storytree is measured: this checkout with its venv, or another revision exported under
bench/out/baseline-<rev>/ with its own venv (`pip install -e .` there). Each has its own repo root (dodo.py,
templates, system prompts, [tool.doit] config) and its own scratch projects under <root>/bench/out/."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "bench" / "out"
# Child processes cache bytecode here instead of obeying this sandbox's PYTHONDONTWRITEBYTECODE=1 (an editable
# install has no __pycache__ of its own, so every run would recompile storytree_build).
PYCACHE = OUT / "pycache"
# Nothing of the caller's storytree, Gemini or Supabase configuration leaks into a measured build.
DROPPED_ENV_PREFIXES = ("STORYTREE_", "GEMINI_", "GOOGLE_", "SUPABASE_")
DROPPED_ENV = ("CI", "DOIT_CONFIG", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH")


@dataclass(frozen=True)
class Toolchain:
    name: str  # "current" or the baseline revision
    root: Path  # the revision's files: dodo.py, templates/, system_prompts/, pyproject.toml, bench/
    bin: Path  # its venv's bin folder

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    @property
    def doit(self) -> str:
        return str(self.bin / "doit")

    @property
    def storytree(self) -> str:
        return str(self.bin / "storytree")

    @property
    def out(self) -> Path:
        return self.root / "bench" / "out"

    def code_digest(self) -> str:
        """sha256 of storytree_build/**/*.py: says which code a stored measurement was made with."""
        sources = sorted((self.root / "storytree_build").rglob("*.py"))
        digest = hashlib.sha256()
        for source in sources:
            digest.update(str(source.relative_to(self.root)).encode() + b"\0" + source.read_bytes())
        return digest.hexdigest()[:16]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(DROPPED_ENV_PREFIXES) and k not in DROPPED_ENV}
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        env.update(extra)
        return env


def current() -> Toolchain:
    return Toolchain("current", REPO, Path(sys.executable).parent)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def baseline(rev: str, log=print) -> Toolchain:  # noqa: ANN001 - a print-like callable
    """REV's files exported (git archive: no worktree is registered in the shared repository) to
    bench/out/baseline-<short sha>/, with a venv of this interpreter and `pip install -e .` of that export.
    Both steps are skipped when a marker says they finished for this exact revision."""
    try:
        sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"--baseline {rev}: not a revision of this repository ({exc.stderr.strip()})") from exc
    dest = OUT / f"baseline-{sha[:7]}"
    exported = dest / ".bench-exported"
    if not exported.exists() or exported.read_text().strip() != sha:
        log(f"[baseline {sha[:7]}] exporting {sha[:12]} to {dest.relative_to(REPO)}")
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        exported.write_text(sha + "\n")
    venv = dest / ".venv"
    installed = dest / ".bench-installed"
    if not installed.exists() or installed.read_text().strip() != sha:
        log(f"[baseline {sha[:7]}] creating {venv.relative_to(REPO)} and installing the revision into it")
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", str(dest)],
                             capture_output=True, text=True)
        if pip.returncode != 0:
            raise SystemExit(f"[baseline {sha[:7]}] pip install -e {dest} failed:\n{pip.stdout}\n{pip.stderr}")
        installed.write_text(sha + "\n")
    return Toolchain(sha[:7], dest, venv / "bin")
