"""Quota benchmark (issue 16): N image targets built by `doit -j 8 image` with the real gemini provider
against the fake Gemini server (tests/support/fakes), which accepts R image calls per second per model (a token
bucket holding one second's worth) and answers anything above with a per-minute 429 RESOURCE_EXHAUSTED
(QuotaFailure + RetryInfo until the next token).

Two runs on fresh copies of one project: the limit unknown (learnt from 429s) and the limit configured in
`[gemini.rate_limits]`. Goals: unknown ≤ 1.15 × N/R with ≤ 5 % 429s; configured ≤ 1.05 × N/R with no 429.
The wall time is the doit build minus the same command's no-op (process start, manifest, checks), so the ratio
measures the pacing, not the start-up.

    .venv/bin/python bench/quota.py              # N=256, R=5/s, 8 workers
    .venv/bin/python bench/quota.py 64 10 8      # N R workers

Prints the ratios of this run; results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from parallel import scratch_project  # noqa: E402
from support.fakes.gemini_server import FakeGemini  # noqa: E402

MODEL = "gemini-3.1-flash-image"
KEY = "bench-key-not-secret"


def build(root: Path, env: dict[str, str], n: int, rate: float, workers: int, configured: bool) -> dict:
    config = ["[gemini]", "max_concurrency = 8"]
    if configured:
        config += ["", "[gemini.rate_limits]", f'"{MODEL}" = "{rate:g}/s"']
    (root / "storytree.toml").write_text("\n".join(config) + "\n")
    command = [sys.executable, "-m", "doit", "-j", str(workers), "image"]
    with FakeGemini(latency=0.05) as fake:
        bucket = fake.limit_rate(rate, burst=rate)
        env = {**env, "GOOGLE_GEMINI_BASE_URL": fake.url, "STORYTREE_YES": "1"}  # consent: no terminal here
        started = time.perf_counter()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"build failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
        started = time.perf_counter()
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
        noop = time.perf_counter() - started
        accepted, refused = bucket.accepted.get(MODEL, 0), bucket.refused.get(MODEL, 0)
    summary = [line for line in done.stdout.splitlines() if "quota" in line or " built" in line]
    if accepted != n:
        raise SystemExit(f"expected {n} accepted calls, the server accepted {accepted}")
    return {"wall": wall, "noop": noop, "accepted": accepted, "refused": refused, "calls": accepted + refused,
            "summary": summary}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    ideal = n / rate
    print(f"quota bench: N={n} images, server limit R={rate:g}/s per model (burst {rate:g}), doit -j {workers}; "
          f"ideal N/R = {ideal:.1f}s")
    for configured, goal_wall, goal_429 in ((False, 1.15, 0.05), (True, 1.05, 0.0)):
        root = REPO / "bench" / "out" / ("quota-configured" if configured else "quota-unknown")
        env = scratch_project(root, n, GEMINI_API_KEY=KEY, STORYTREE_PROVIDER="gemini")
        result = build(root, env, n, rate, workers, configured)
        paced = result["wall"] - result["noop"]
        share = result["refused"] / result["calls"]
        label = "configured limit" if configured else "unknown limit"
        print(f"  {label}: wall {result['wall']:.1f}s (no-op {result['noop']:.1f}s) → ratio {paced / ideal:.3f} "
              f"(goal ≤ {goal_wall}); calls {result['calls']}, 429s {result['refused']} = {share:.1%} "
              f"(goal ≤ {goal_429:.0%}); each target paid once: {result['accepted'] == n}")
        for line in result["summary"]:
            print(f"    {line}")


if __name__ == "__main__":
    main()
