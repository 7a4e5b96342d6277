"""Consent before paying: a gemini build (the real SDK against the fake Gemini server, in a real `doit` process)
without a terminal pays nothing unless `max_cost=` or `yes=1` says so; on a terminal (a real pty) it asks
`Proceed? [y/N]` and only `y` pays. The offline provider never asks. These runs give no consent by default
(`project_env(consent=False)`), unlike the other gemini tests."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storytree_build.core.exit_codes import ExitCode
from support.fakes.gemini_server import FakeGemini
from support.project import SAMPLE_ID, doit, project_env, records_of
from test_gemini_images import KEY, PLATE, imported_template, write_config  # noqa: F401 - fixtures

CONSENT_LINE = ("storytree: this build would pay ~{cost} USD (gemini); without a terminal, consent with "
                "max_cost=<USD> or yes=1 (STORYTREE_YES=1)")
PLATE_COST = "0.07"  # one character plate at the default price table


@pytest.fixture
def fake() -> FakeGemini:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def paid_project(project: Path, imported_template: Path) -> Path:  # noqa: F811 - the fixture imported above
    shutil.rmtree(project)
    shutil.copytree(imported_template, project)
    return project


def unconsented_env(project: Path, fake: FakeGemini, **extra: str) -> dict[str, str]:
    return project_env(project, consent=False, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url, **extra)


def ask_for_consent_above(project: Path, confirm_above: float) -> None:
    write_config(project)
    with (project / "storytree.toml").open("a") as toml:
        toml.write(f"\n[build]\nconfirm_above = {confirm_above}\n")


# -- without a terminal ---------------------------------------------------------------------------------------------
def test_without_a_terminal_a_paid_build_stops_before_paying_with_one_line(paid_project: Path,
                                                                         fake: FakeGemini) -> None:
    run = doit(paid_project, PLATE, env=unconsented_env(paid_project, fake))
    assert run.returncode == ExitCode.REFUSED, run.stderr
    assert fake.requests == []  # not one request, paid or not
    assert run.stderr.splitlines().count(CONSENT_LINE.format(cost=PLATE_COST)) == 1
    assert "Proceed?" not in run.stderr
    assert records_of(paid_project) == {}
    assert not (paid_project / ".storytree-data" / "objects").exists() or not any(
        (paid_project / ".storytree-data" / "objects").rglob("*.png"))


@pytest.mark.parametrize("consent", [{"args": ("yes=1",)}, {"env": {"STORYTREE_YES": "1"}},
                                     {"args": ("max_cost=100",)}], ids=["yes=1", "STORYTREE_YES=1", "max_cost=100"])
def test_yes_or_a_cap_is_consent(paid_project: Path, fake: FakeGemini, consent: dict) -> None:
    run = doit(paid_project, PLATE, *consent.get("args", ()),
               env=unconsented_env(paid_project, fake, **consent.get("env", {})))
    assert run.returncode == 0, run.stderr
    assert len(fake.image_calls()) == 1
    assert PLATE in records_of(paid_project)
    assert f"storytree: story {SAMPLE_ID}: 1 to pay ({PLATE_COST} USD est., " in run.stderr


def test_the_opening_line_names_the_cap(paid_project: Path, fake: FakeGemini) -> None:
    run = doit(paid_project, PLATE, "max_cost=25", env=unconsented_env(paid_project, fake))
    opening = [line for line in run.stderr.splitlines() if line.startswith(f"storytree: story {SAMPLE_ID}:")]
    assert opening == [f"storytree: story {SAMPLE_ID}: 1 to pay ({PLATE_COST} USD est., cap 25.00 USD)"]


def test_a_no_op_build_asks_nothing_and_says_no_opening_line(paid_project: Path, fake: FakeGemini) -> None:
    assert doit(paid_project, PLATE, "yes=1", env=unconsented_env(paid_project, fake)).returncode == 0
    calls = len(fake.requests)
    again = doit(paid_project, PLATE, env=unconsented_env(paid_project, fake))  # no consent needed: nothing to pay
    assert again.returncode == 0, again.stderr
    assert len(fake.requests) == calls
    assert "to pay" not in again.stderr and "consent" not in again.stderr


def test_the_offline_provider_never_needs_consent(paid_project: Path) -> None:
    run = doit(paid_project, PLATE, "provider=stub", env=project_env(paid_project, consent=False))
    assert run.returncode == 0, run.stderr
    assert f"storytree: story {SAMPLE_ID}: 1 to generate (0.00 USD, offline)" in run.stderr.splitlines()


# -- on a terminal --------------------------------------------------------------------------------------------------
def on_a_terminal(project: Path, args: tuple[str, ...], env: dict[str, str], answer: str | None) -> tuple[int, str]:
    """`doit ARGS` with stdin, stdout and stderr on a real pty; types `answer` once the question appears (None: the
    question must not appear). Returns the exit code and everything the terminal showed."""
    leader, follower = os.openpty()
    child = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=project, env=env, stdin=follower,
                             stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    shown = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                raise AssertionError(f"no output for 60 s; the terminal showed:\n{shown.decode(errors='replace')}")
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and not answered and b"Proceed? [y/N] " in shown:
                os.write(leader, answer.encode())
                answered = True
        code = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)
    return code, shown.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("answer", ["n\n", "\n", "whatever\n", "\x04"], ids=["n", "enter", "other", "EOF"])
def test_on_a_terminal_anything_but_y_pays_nothing(paid_project: Path, fake: FakeGemini, answer: str) -> None:
    ask_for_consent_above(paid_project, 0.0)
    code, shown = on_a_terminal(paid_project, (PLATE,), unconsented_env(paid_project, fake), answer)
    assert shown.count("Proceed? [y/N] ") == 1, shown
    assert code == ExitCode.REFUSED, shown
    assert fake.requests == []
    assert "storytree: not confirmed: nothing was paid" in shown
    assert records_of(paid_project) == {}


@pytest.mark.parametrize("answer", ["y\n", "yes\n"])
def test_on_a_terminal_y_builds(paid_project: Path, fake: FakeGemini, answer: str) -> None:
    ask_for_consent_above(paid_project, 0.0)
    code, shown = on_a_terminal(paid_project, (PLATE,), unconsented_env(paid_project, fake), answer)
    assert code == 0, shown
    assert shown.index(f"storytree: story {SAMPLE_ID}: 1 to pay") < shown.index("Proceed? [y/N] ")  # said first
    assert len(fake.image_calls()) == 1
    assert PLATE in records_of(paid_project)


def test_on_a_terminal_a_build_under_confirm_above_does_not_ask(paid_project: Path, fake: FakeGemini) -> None:
    code, shown = on_a_terminal(paid_project, (PLATE,), unconsented_env(paid_project, fake), None)  # default 1 USD
    assert code == 0, shown
    assert "Proceed?" not in shown
    assert len(fake.image_calls()) == 1


def test_on_a_terminal_the_offline_provider_never_asks(paid_project: Path) -> None:
    ask_for_consent_above(paid_project, 0.0)
    code, shown = on_a_terminal(paid_project, (PLATE, "provider=stub"), project_env(paid_project, consent=False),
                                None)
    assert code == 0, shown
    assert "Proceed?" not in shown
