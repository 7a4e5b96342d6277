"""`storytree quota [--reset MODEL]` (issue 23 §6): what the rate limiter learnt, per model, and a way to forget a low
learnt rate; the build's closing quota line says how. The real limiter on its real SQLite cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from storytree_build.core.exit_codes import ExitCode
from storytree_build.providers.rate_limit import RateLimiter
from support.project import new_project, storytree

MODEL = "gemini-3.1-flash-image"
OTHER = "gemini-omni-1.1-flash"


def learnt_limiter(root: Path) -> RateLimiter:
    limiter = RateLimiter(root / ".storytree" / "rate-limits.sqlite", initial_rate_per_minute=60)
    for model in (MODEL, OTHER):
        limiter.acquire(model, "image:scenelet-1_1")
    limiter.rate_limited(MODEL, 0.0)  # a 429: the rate is cut to 70 % and learning leaves slow start
    return limiter


def test_quota_shows_each_learnt_rate_and_how_to_reset_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = new_project(tmp_path / "project")
    learnt_limiter(root).close()
    assert storytree(root, "quota", monkeypatch=monkeypatch) == ExitCode.OK
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(MODEL))
    assert "42.0 calls/min" in line and "learnt" in line  # 60/min × 0.7
    assert any(line.startswith(OTHER) for line in out.splitlines())
    assert "storytree quota --reset MODEL" in out


def test_quota_reset_forgets_one_model_and_the_next_build_starts_over(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = new_project(tmp_path / "project")
    learnt_limiter(root).close()
    assert storytree(root, "quota", "--reset", MODEL, monkeypatch=monkeypatch) == ExitCode.OK
    assert MODEL in capsys.readouterr().err
    assert storytree(root, "quota", monkeypatch=monkeypatch) == ExitCode.OK
    out = capsys.readouterr().out
    assert not any(line.startswith(MODEL) for line in out.splitlines())
    assert any(line.startswith(OTHER) for line in out.splitlines())  # only the model named is forgotten
    again = RateLimiter(root / ".storytree" / "rate-limits.sqlite", initial_rate_per_minute=60)
    try:
        assert again.learnt()[0]["model"] == OTHER and len(again.learnt()) == 1
    finally:
        again.close()


def test_resetting_a_model_nothing_was_learnt_for_names_the_known_ones(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = new_project(tmp_path / "project")
    learnt_limiter(root).close()
    assert storytree(root, "quota", "--reset", "gemini-9", monkeypatch=monkeypatch) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "gemini-9" in err and MODEL in err and OTHER in err


def test_quota_in_a_fresh_project_says_nothing_was_learnt_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    root = new_project(tmp_path / "project")
    assert storytree(root, "quota", monkeypatch=monkeypatch) == ExitCode.OK
    assert "nothing learnt" in capsys.readouterr().err
    assert not (root / ".storytree" / "rate-limits.sqlite").exists() and not (root / ".storytree-data").exists()


def test_the_closing_quota_line_after_a_429_says_how_to_reset_the_learnt_rate(tmp_path: Path) -> None:
    limiter = learnt_limiter(new_project(tmp_path / "project"))
    try:
        line = next(line for line in limiter.summary_lines() if line.startswith(f"quota {MODEL}"))
        assert "42.0 calls/min" in line and f"storytree quota --reset {MODEL}" in line
        other = next(line for line in limiter.summary_lines() if line.startswith(f"quota {OTHER}"))
        assert "--reset" not in other  # no 429: nothing to reset
    finally:
        limiter.close()
