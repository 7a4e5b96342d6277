"""Two doit runs on the same story at once: every target is generated exactly once (per-target lock)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support.project import SAMPLE_ID, doit, project_env, storytree, write_export


def test_two_parallel_runs_never_build_the_same_target_twice(project: Path, sample_export: dict, monkeypatch) -> None:  # noqa: ANN001
    write_export(project / "sample.json", sample_export)
    assert storytree(project, "import", str(project / "sample.json"), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    calls = project / "calls.log"
    env = project_env(project, STORYTREE_STUB_DELAY="0.03", STORYTREE_STUB_CALL_LOG=str(calls))
    runs = [doit(project, "-j", "2", f"story:{SAMPLE_ID}", "provider=stub", env=env, wait=False)
            for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
    counts = Counter(calls.read_text().split())
    assert len(counts) == 36
    assert max(counts.values()) == 1, [t for t, n in counts.items() if n > 1]
