"""No-op build benchmark (issue 3 "Benchmark", issue 6 item 8): `doit story:<id>` on an up-to-date story
against the floor (a fresh python that loads the manifest YAML with CSafeLoader and stats every output and
reference path) and against plain doit (bench/plain_dodo.py: the same tasks from the same manifest with doit's own
up-to-date checks, on the same assets), plus dry-run, manifest generation and peak RSS at 5,000 targets.

    .venv/bin/python bench/noop.py                 # sizes 500 and 5000, 7 alternating repetitions
    .venv/bin/python bench/noop.py --reps 9 --profile
    .venv/bin/python bench/noop.py --manifest-baseline 700db7d   # `storytree manifest` before/after, same run

Everything happens in scratch projects under bench/out/ (git-ignored): a synthetic story export shaped like the
sample story is written, imported with `storytree import`, its manifest written with `storytree manifest`, built
once with `doit -j 4 story:<id> provider=stub`, then all measurements run in this one process,
alternating the commands within each repetition (medians reported; wall and CPU time of each child).

A built scratch project is reused when its story export is byte-identical (the first build of 5,000 stub targets
takes 10-35 minutes on 2 cores); `--fresh` starts over. When reusing, the manifest is regenerated with the current
code and a catch-up build runs first, so the no-op really is a no-op of the current code. Templates and system
prompts are pinned at the first build (`--resync` copies the repo's current ones: a changed template rebuilds
every key frame and video). Child processes get PYTHONPYCACHEPREFIX=bench/out/pycache instead of this sandbox's
PYTHONDONTWRITEBYTECODE=1 (the editable install has no __pycache__; BENCH_NO_PYC=1 measures without .pyc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
VENV_BIN = Path(sys.executable).parent
DOIT = str(VENV_BIN / "doit")
STORYTREE = str(VENV_BIN / "storytree")
PYTHON = sys.executable
SAMPLE = REPO / "samples" / "sample-story.json"
ASSETS_REL = "apps/story-tree-ui/public/generated"
PLAIN_DODO = str(REPO / "bench" / "plain_dodo.py")  # the plain-doit baseline (same tasks, doit's own checks)

# The floor: python start + load the manifest (CSafeLoader) + stat every output and every reference path
# (references counted per target, as a per-target up-to-date check would see them).
FLOOR_CODE = textwrap.dedent("""
    import os, sys, yaml
    manifest, root = sys.argv[1], sys.argv[2]
    with open(manifest, "rb") as f:
        data = yaml.load(f, Loader=yaml.CSafeLoader)
    n = 0
    for t in data["targets"]:
        os.stat(os.path.join(root, t["output"])); n += 1
        for r in t.get("references", ()):
            os.stat(os.path.join(root, r["path"])); n += 1
    print(n)
""")

# The same floor with the GC threshold the no-op sets before it loads the manifest (doit_tasks.configure_process):
# informational, to show how much of the floor is garbage-collection passes during the YAML parse.
FLOOR_GC_CODE = "import gc; gc.set_threshold(100_000, 50, 100)\n" + FLOOR_CODE

# Peak RSS exactly as the brief asks: a wrapper whose only child is the no-op, then RUSAGE_CHILDREN.
RSS_CODE = textwrap.dedent("""
    import resource, subprocess, sys
    rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


# --- synthetic story ---------------------------------------------------------------------------


def story_shape(n_targets: int) -> tuple[int, int, int]:
    """(characters, environments, shots): each character has 2 plates (model sheet + action shot), each
    environment 1 keyframe, each shot 2 targets (key frame + video)."""
    chars = min(20, max(4, n_targets // 60))
    envs = min(30, max(4, n_targets // 50))
    if (n_targets - 2 * chars - envs) % 2:
        envs += 1
    shots = (n_targets - 2 * chars - envs) // 2
    return chars, envs, shots


def synthetic_export(n_targets: int) -> tuple[str, dict]:
    """A Supabase table export shaped like the sample story, scaled to ~n_targets manifest targets.
    Texts are the sample's, varied per item so every prompt (and prompt hash) is distinct."""
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    s_story = sample["stories"][0]
    s_vdd, s_add, s_vrp = (s_story[k] for k in ("visual_design_document", "audio_design_document",
                                                  "visual_reference_package"))
    s_chars = s_vdd["character_designs"]
    s_envs = s_vdd["environment_designs"]
    s_sheets = s_vrp["character_model_sheets"]
    s_kfs = s_vrp["environment_keyframes"]
    s_voices = s_add["audio_design_document"]["character_voice_profiles"]
    s_shots = [sh["storyboard_payload"] for sh in sample["shots"]]
    chars, envs, n_shots = story_shape(n_targets)
    story_id = f"b0000000-0000-4000-8000-{n_targets:012d}"
    per_scenelet = 5
    n_scenelets = -(-n_shots // per_scenelet)

    char_ids = [f"char-{i:02d}" for i in range(chars)]
    env_ids = [f"env-{i:02d}" for i in range(envs)]
    cdesigns, sheets, voices = [], [], []
    for i, cid in enumerate(char_ids):
        base = json.loads(json.dumps(s_chars[i % len(s_chars)]))
        base["character_id"] = cid
        base["role"] = f"{base['role']} (variant {i})"
        cdesigns.append(base)
        plates = json.loads(json.dumps(s_sheets[i % len(s_sheets)]["reference_plates"][:2]))
        for p in plates:
            p["image_generation_prompt"] += f" Variant {i} of {cid}."
        sheets.append({"character_id": cid, "reference_plates": plates})
        v = dict(s_voices[i % len(s_voices)])
        v.update(character_id=cid, character_name=f"Character {i}")
        voices.append(v)
    edesigns, keyframes = [], []
    for i, eid in enumerate(env_ids):
        base = json.loads(json.dumps(s_envs[i % len(s_envs)]))
        base["environment_id"] = eid
        base["associated_scenelet_ids"] = [f"scenelet-{1 + (i * 7) % n_scenelets}"]
        edesigns.append(base)
        kf = json.loads(json.dumps(s_kfs[i % len(s_kfs)]["keyframes"][0]))
        kf["image_generation_prompt"] += f" Variant {i} of {eid}."
        keyframes.append({"environment_id": eid, "keyframes": [kf]})
    vdd = {"global_aesthetic": s_vdd["global_aesthetic"], "character_designs": cdesigns,
           "environment_designs": edesigns}
    add = json.loads(json.dumps(s_add))
    add["audio_design_document"]["character_voice_profiles"] = voices
    vrp = {"character_model_sheets": sheets, "environment_keyframes": keyframes}
    story = {**{k: s_story[k] for k in ("initial_prompt", "story_constitution", "created_at", "updated_at")},
             "id": story_id, "display_name": f"Benchmark story, {n_targets} targets",
             "visual_design_document": vdd, "audio_design_document": add, "visual_reference_package": vrp}

    scenelets, shots = [], []
    s_scenelet = sample["scenelets"][0]
    for k in range(n_scenelets):
        scenelets.append({**s_scenelet, "id": f"c0000000-0000-4000-8000-{k:012d}", "story_id": story_id,
                          "parent_id": None if k == 0 else f"c0000000-0000-4000-8000-{k - 1:012d}",
                          "created_at": "2026-11-01T10:00:00+00:00"})
    for j in range(n_shots):
        k, idx = divmod(j, per_scenelet)
        payload = json.loads(json.dumps(s_shots[j % len(s_shots)]))
        payload["compositionAndContent"] += f" (benchmark shot {j})"
        c1, c2 = char_ids[j % chars], char_ids[(j * 3 + 1) % chars]
        payload["referencedDesigns"] = {"characters": sorted({c1, c2}), "environments": [env_ids[j % envs]]}
        payload["audioAndNarrative"] = [
            {"type": "monologue", "source": "narrator", "line": f"Narration for shot {j}.", "delivery": "Warm."},
            {"type": "dialogue", "source": c1, "line": f"Line {j} spoken by {c1}.", "delivery": "Bright."},
        ]
        shots.append({"id": f"d0000000-0000-4000-8000-{j:012d}", "story_id": story_id,
                      "scenelet_ref": scenelets[k]["id"], "scenelet_id": f"scenelet-{k + 1}",
                      "scenelet_sequence": k + 1, "shot_index": idx + 1, "storyboard_payload": payload,
                      "created_at": "2026-11-01T11:00:00+00:00", "updated_at": "2026-11-01T11:00:00+00:00"})
    return story_id, {"stories": [story], "scenelets": scenelets, "shots": shots}


# --- scratch project ---------------------------------------------------------------------------


def doit_pyproject() -> str:
    """Only the [tool.doit*] tables of the repo's pyproject.toml (backend, dep_file, the dryrun plugin)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    keep, out = False, []
    for line in text.splitlines():
        if line.startswith("["):
            keep = line.startswith("[tool.doit")
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def project_env(proj: Path) -> dict[str, str]:
    # A normal install caches bytecode; this sandbox sets PYTHONDONTWRITEBYTECODE=1, which would make every run
    # recompile storytree_build (an editable install without __pycache__). Cache it under bench/out instead.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STORYTREE_", "GEMINI_", "GOOGLE_", "SUPABASE_"))
           and k not in ("CI", "DOIT_CONFIG", "PYTHONDONTWRITEBYTECODE")}
    if not os.environ.get("BENCH_NO_PYC"):
        env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(STORYTREE_ROOT=str(proj), STORYTREE_STATE_DIR=str(proj / ".storytree"),
               STORYTREE_DB=str(proj / ".storytree" / "story.sqlite"))
    return env


def run(cmd: list[str], proj: Path, check: bool = True, capture: bool = True,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=proj, env={**project_env(proj), **(extra_env or {})}, text=True,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p


def timed(cmd: list[str], proj: Path, extra_env: dict[str, str] | None = None) -> tuple[float, float, int, int, str]:
    """(wall seconds, CPU seconds user+sys, this child's peak RSS in KiB, return code, output).
    os.wait4 gives the rusage of exactly this child."""
    env = {**project_env(proj), **(extra_env or {})}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, p.returncode, out.decode(errors="replace")


def sync_project_files(proj: Path, prompts_too: bool) -> None:
    """dodo.py and the [tool.doit] config are copied every run; templates and system prompts only for a new
    project or with --resync (a changed template makes every key frame and video out of date: with the stub
    provider a 5,000-target rebuild takes tens of minutes on 2 cores)."""
    for folder in ("templates", "system_prompts") if prompts_too else ():
        shutil.rmtree(proj / folder, ignore_errors=True)
        shutil.copytree(REPO / folder, proj / folder)
    shutil.copy2(REPO / "dodo.py", proj / "dodo.py")
    (proj / "pyproject.toml").write_text(doit_pyproject(), encoding="utf-8")


def setup(n: int, reuse: bool, workers: int, resync: bool, build: bool = True) -> dict:
    proj = OUT / f"n{n}"
    story_id, export = synthetic_export(n)
    export_text = json.dumps(export, ensure_ascii=False, indent=1)
    export_file = proj / "story-export.json"
    manifest = proj / "manifests" / f"{story_id}.yaml"
    info = {"n": n, "proj": proj, "story_id": story_id, "manifest": manifest, "assets": proj / ASSETS_REL}
    reusing = (reuse and (proj / ".storytree" / "story.sqlite").exists() and export_file.exists()
               and export_file.read_text(encoding="utf-8") == export_text)
    if not reusing:
        shutil.rmtree(proj, ignore_errors=True)
        (proj / "manifests").mkdir(parents=True)
        (proj / ASSETS_REL).mkdir(parents=True)
    sync_project_files(proj, prompts_too=resync or not reusing)
    if not reusing:
        export_file.write_text(export_text, encoding="utf-8")
        t0 = time.perf_counter()
        run([STORYTREE, "import", str(export_file)], proj)
        info["import_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = run([STORYTREE, "manifest", story_id], proj)
    info["manifest_once_s"] = time.perf_counter() - t0
    info["targets"] = sum(1 for line in manifest.read_text(encoding="utf-8").splitlines() if line.startswith("- task: "))
    info["manifest_mb"] = manifest.stat().st_size / 1e6
    print(f"[{n}] {'reused project; ' if reusing else ''}{p.stderr.strip()}  "
          f"(manifest {info['manifest_once_s']:.2f}s, {info['manifest_mb']:.1f} MB)", flush=True)
    if not build:
        return info
    # The first build (when reusing: whatever the current code and manifest still need; usually nothing).
    t0 = time.perf_counter()
    p = run([DOIT, "-j", str(workers), f"story:{story_id}", "provider=stub"], proj)
    info["first_build_s" if not reusing else "catch_up_build_s"] = t = time.perf_counter() - t0
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    print(f"[{n}] {'first' if not reusing else 'catch-up'} build ({workers} threads) {t:.1f}s: {last}", flush=True)
    # The plain-doit baseline records its own state (config_changed values, file_dep signatures) in its own doit
    # database on the same assets: its first run executes every task (each only checks that its target exists).
    t0 = time.perf_counter()
    p = run(commands(info, False)["plain"], proj)
    primed = sum(1 for line in p.stdout.splitlines() if line.startswith(". "))
    print(f"[{n}] plain-doit baseline primed in {time.perf_counter() - t0:.1f}s ({primed} tasks recorded)", flush=True)
    return info


# --- measurement -------------------------------------------------------------------------------


def commands(info: dict, with_extras: bool) -> dict[str, list[str]]:
    sid = info["story_id"]
    cmds = {
        "noop": [DOIT, f"story:{sid}", "provider=stub"],
        "floor": [PYTHON, "-c", FLOOR_CODE, str(info["manifest"]), str(info["assets"])],
        "floor_gc": [PYTHON, "-c", FLOOR_GC_CODE, str(info["manifest"]), str(info["assets"])],
        # Plain doit (doit's own `run`, no plugins) on the same manifest and assets: YAML parse (CSafeLoader), and
        # the same with a JSON copy of the manifest (how much of the baseline is the YAML parse).
        "plain": [PYTHON, PLAIN_DODO, f"story:{sid}", "provider=stub"],
        "plain_json": [PYTHON, PLAIN_DODO, f"story:{sid}", "provider=stub"],
    }
    if with_extras:
        # (c) the dry-run of the up-to-date story (lists nothing, says "0 would run") and the dry-run that
        # lists every target: provider=gemini makes all 5,000 out of date ("provider changed"), so each is
        # listed with its reason and its prompt is re-rendered and checked. No provider is called, no key needed.
        cmds["dryrun_uptodate"] = [DOIT, "dryrun", f"story:{sid}", "provider=stub"]
        cmds["dryrun_all"] = [DOIT, "dryrun", f"story:{sid}", "provider=gemini"]
        cmds["manifest"] = [STORYTREE, "manifest", sid]
        cmds["manifest_baseline"] = [STORYTREE, "manifest", sid]  # with EXTRA_ENV's PYTHONPATH: older code
    return cmds


EXTRA_ENV: dict[str, dict[str, str]] = {"plain_json": {"PLAIN_DODO_MANIFEST": "json"}}  # per command name


def plain_noop(out: str, n: int) -> bool:
    """doit's console reporter: `-- task` up to date, `.  task` executed; n asset tasks and the gallery."""
    lines = out.splitlines()
    return (sum(1 for line in lines if line.startswith("-- ")) == n + 1
            and not any(line.startswith(". ") for line in lines))


def validate(name: str, rc: int, out: str, info: dict) -> None:
    n = info["targets"]
    ok = {
        "noop": rc == 0 and "storytree: 0 built, " in out and ", 0 failed" in out and f" {n} up to date" in out,
        "floor": rc == 0,
        "floor_gc": rc == 0,
        "dryrun_uptodate": rc == 0 and f"0 would run, {n} up to date" in out,
        "dryrun_all": rc == 0 and f"{n} would run, 0 up to date" in out,
        "manifest": rc == 0,
        "manifest_baseline": rc == 0,
        "plain": rc == 0 and plain_noop(out, n),
        "plain_json": rc == 0 and plain_noop(out, n),
        "noop_after_manifest": rc == 0 and "storytree: 0 built, " in out and ", 0 failed" in out,
    }[name]
    if not ok:
        raise SystemExit(f"[{info['n']}] {name} did not do what the benchmark expects (rc {rc}):\n{out[-2000:]}")


EXPENSIVE = ("dryrun_all",)  # several seconds each at 5,000 targets: --extra-reps repetitions


def measure(infos: list[dict], reps: int, extra_reps: int, manifest_reps: int, baseline: Path | None) -> dict:
    """Alternating repetitions of every command except `storytree manifest`; then (largest size only) the
    manifest command, each run followed by a no-op: rewriting the manifest (even with the same bytes) changes
    its mtime, so that no-op shows the cost of a cold manifest cache, kept apart from the steady-state no-op.
    With `baseline` (an exported older storytree_build), each manifest run is preceded by the same command on the
    older code, and both must write the same bytes."""
    big = max(i["n"] for i in infos)
    plan = [(info, name, cmd) for info in infos for name, cmd in commands(info, info["n"] == big).items()
            if not name.startswith("manifest")]
    samples: dict[tuple[int, str], list[tuple[float, float, int]]] = {(i["n"], name): [] for i, name, _ in plan}
    print(f"warm-up, then {reps} alternating repetitions ({extra_reps} for {', '.join(EXPENSIVE)})", flush=True)
    for info, name, cmd in plan:  # warm-up: page cache, .pyc files, caches; also checks every command behaves
        _, _, _, rc, out = timed(cmd, info["proj"], EXTRA_ENV.get(name))
        validate(name, rc, out, info)
    for rep in range(reps):
        order = plan[rep % len(plan):] + plan[:rep % len(plan)]  # rotate so no command always goes first
        for info, name, cmd in order:
            if name in EXPENSIVE and rep >= extra_reps:
                continue
            wall, cpu, rss, rc, out = timed(cmd, info["proj"], EXTRA_ENV.get(name))
            validate(name, rc, out, info)
            samples[(info["n"], name)].append((wall, cpu, rss))
        print(f"  rep {rep + 1}/{reps} (load {os.getloadavg()[0]:.1f}): " + ", ".join(
            f"{n}/{name} {samples[(n, name)][-1][0]:.2f}" for (n, name) in samples if len(samples[(n, name)]) > rep),
            flush=True)
    info = next(i for i in infos if i["n"] == big)
    samples.update(measure_manifest(info, manifest_reps, baseline, noop_after=True))
    return samples


def measure_manifest(info: dict, reps: int, baseline: Path | None, noop_after: bool) -> dict:
    """`storytree manifest` (after the same command on the baseline code, when given; both must write the same
    bytes), optionally each followed by a no-op."""
    n, cmds = info["n"], commands(info, True)
    steps = [("manifest", cmds["manifest"], None)]
    if noop_after:
        steps.append(("noop_after_manifest", cmds["noop"], None))
    if baseline is not None:
        steps.insert(0, ("manifest_baseline", cmds["manifest_baseline"], {"PYTHONPATH": str(baseline)}))
    samples: dict[tuple[int, str], list[tuple[float, float, int]]] = {(n, name): [] for name, _, _ in steps}
    reference = info["manifest"].read_bytes()
    for rep in range(reps):
        for name, cmd, env in steps:
            wall, cpu, rss, rc, out = timed(cmd, info["proj"], env)
            validate(name, rc, out, info)
            if name.startswith("manifest") and info["manifest"].read_bytes() != reference:
                raise SystemExit(f"[{n}] {name} wrote different manifest bytes than the first `storytree manifest`")
            samples[(n, name)].append((wall, cpu, rss))
        print(f"  manifest {rep + 1}/{reps} (load {os.getloadavg()[0]:.1f}): " + ", ".join(
            f"{name} {samples[(n, name)][-1][0]:.2f}" for name, _, _ in steps), flush=True)
    return samples


def manifest_only(info: dict, reps: int, baseline: Path | None, baseline_name: str | None) -> int:
    load_before = os.getloadavg()
    samples = measure_manifest(info, reps, baseline, noop_after=False)
    n = info["n"]
    print(f"\n== `storytree manifest`, {n} targets ({info['manifest_mb']:.1f} MB): {time.strftime('%Y-%m-%d %H:%M %Z')} · "
          f"nproc {os.cpu_count()} · Python {platform.python_version()} · {platform.machine()} · load average (1 min) "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after · {reps} alternating runs")
    for name, label in (("manifest_baseline", f"{baseline_name}'s code"), ("manifest", "current code")):
        if (n, name) in samples:
            walls = sorted(row[0] for row in samples[(n, name)])
            cpus = [row[1] for row in samples[(n, name)]]
            print(f"  {label:<22} wall median {statistics.median(walls):.3f}s (min {walls[0]:.3f}, max {walls[-1]:.3f})"
                  f", cpu median {statistics.median(cpus):.3f}s")
    return 0


def peak_rss_children(info: dict) -> tuple[int, int]:
    cmd = [PYTHON, "-c", RSS_CODE, *commands(info, False)["noop"]]
    p = run(cmd, info["proj"])
    rc, kib = (int(x) for x in p.stdout.split())
    return rc, kib


def profile(info: dict) -> None:
    prof = OUT / f"noop-{info['n']}.prof"
    cmd = [PYTHON, "-m", "cProfile", "-o", str(prof), DOIT, f"story:{info['story_id']}", "provider=stub"]
    run(cmd, info["proj"])
    import pstats

    print(f"\ncProfile of the {info['n']}-target no-op ({prof.relative_to(REPO)}), top 30 by cumulative time:")
    pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
    print("top 25 by own time:")
    pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,5000", help="comma-separated target counts (default 500,5000)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per command (default 7, minimum 5)")
    ap.add_argument("--extra-reps", type=int, default=3,
                    help="repetitions of the slow extras (dry-run listing all, manifest); default 3")
    ap.add_argument("--workers", type=int, default=4, help="doit -n for the first build (default 4)")
    ap.add_argument("--setup-only", action="store_true", help="create and build the scratch projects, then stop")
    ap.add_argument("--fresh", action="store_true",
                    help="rebuild the scratch projects from scratch (default: reuse a built one whose export is identical)")
    ap.add_argument("--resync", action="store_true",
                    help="when reusing: copy the repo's current templates/system prompts again (may rebuild a lot)")
    ap.add_argument("--profile", action="store_true", help="also cProfile the largest no-op")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--manifest-reps", type=int, default=5,
                    help="repetitions of `storytree manifest` at the largest size (default 5)")
    ap.add_argument("--manifest-only", action="store_true",
                    help="only time `storytree manifest` at the largest size (no build needed; --manifest-reps runs)")
    ap.add_argument("--manifest-baseline", metavar="REV",
                    help="also time `storytree manifest` with this git revision's storytree_build (exported under "
                         "bench/out/), alternating with the current code; both must write the same bytes")
    args = ap.parse_args()
    if args.reps < 5:
        ap.error("--reps must be at least 5")
    started = time.perf_counter()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    if args.manifest_only:
        sizes = sizes[-1:]
    infos = [setup(n, not args.fresh, args.workers, args.resync, build=not args.manifest_only) for n in sizes]
    for info in infos:
        if info["targets"] != info["n"]:
            print(f"note: the {info['n']} story's manifest has {info['targets']} targets", flush=True)
    baseline = None
    if args.manifest_baseline:
        from check_identity import export_revision

        baseline = export_revision(args.manifest_baseline)
    if args.manifest_only:
        return manifest_only(infos[0], args.manifest_reps, baseline, args.manifest_baseline)
    if args.setup_only:
        return 0
    load_before = os.getloadavg()
    samples = measure(infos, args.reps, min(args.extra_reps, args.reps), args.manifest_reps, baseline)
    load_after = os.getloadavg()
    big = max(infos, key=lambda i: i["n"])
    rss_rc, rss_kib = peak_rss_children(big)

    def med(n: int, name: str, col: int = 0) -> float:
        return statistics.median(row[col] for row in samples[(n, name)])

    def spread(n: int, name: str) -> str:
        walls = [row[0] for row in samples[(n, name)]]
        return f"{min(walls):.3f}–{max(walls):.3f}"

    print(f"\n== results: {time.strftime('%Y-%m-%d %H:%M %Z')} · nproc {os.cpu_count()} · Python "
          f"{platform.python_version()} · {platform.machine()} · load average (1 min) {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after · medians of {args.reps} (extras {min(args.extra_reps, args.reps)}), seconds")
    sources = sorted((REPO / "storytree_build").rglob("*.py"))
    digest = __import__("hashlib").sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()[:16]
    newest = max(sources, key=lambda f: f.stat().st_mtime)
    print(f"code: sha256 of storytree_build/**/*.py = {digest}…, newest {newest.relative_to(REPO)} "
          f"({time.strftime('%H:%M:%S', time.localtime(newest.stat().st_mtime))}); doit "
          f"{__import__('importlib.metadata').metadata.version('doit')}, PyYAML "
          f"{__import__('importlib.metadata').metadata.version('PyYAML')}, pydantic "
          f"{__import__('importlib.metadata').metadata.version('pydantic')}")
    print("wall = elapsed time (what the goals are about); cpu = user+sys of the child (less sensitive to other load)")
    rows, verdicts = [], []
    print(f"{'targets':>7} {'no-op':>7} {'floor':>7} {'ratio':>6} | {'no-op cpu':>9} {'floor cpu':>9} {'ratio':>6} | "
          f"{'no-op range':>13} {'floor range':>13} {'RSS MiB':>8} | {'floor, GC as no-op':>18} {'ratio':>6}")
    for info in infos:
        n = info["n"]
        noop, floor = med(n, "noop"), med(n, "floor")
        noop_cpu, floor_cpu = med(n, "noop", 1), med(n, "floor", 1)
        rss = max(row[2] for row in samples[(n, "noop")]) / 1024
        rows.append({"targets": n, "noop_s": noop, "floor_s": floor, "ratio": noop / floor, "noop_cpu_s": noop_cpu,
                     "floor_cpu_s": floor_cpu, "cpu_ratio": noop_cpu / floor_cpu, "noop_range": spread(n, "noop"),
                     "floor_range": spread(n, "floor"), "noop_rss_mib": rss,
                     "manifest_mb": info["manifest_mb"], "first_build_s": info.get("first_build_s")})
        floor_gc = med(n, "floor_gc")
        rows[-1].update(floor_gc_s=floor_gc, ratio_floor_gc=noop / floor_gc)
        print(f"{n:>7} {noop:>7.3f} {floor:>7.3f} {noop / floor:>6.2f} | {noop_cpu:>9.3f} {floor_cpu:>9.3f} "
              f"{noop_cpu / floor_cpu:>6.2f} | {spread(n, 'noop'):>13} {spread(n, 'floor'):>13} {rss:>8.1f} | "
              f"{floor_gc:>18.3f} {noop / floor_gc:>6.2f}")
    print("\nstorytree no-op against plain doit (bench/plain_dodo.py: the same tasks, names, targets and task_dep from "
          "the same manifest, doit's own checks: targets, file_dep on reference images, config_changed; doit's own "
          "`run`, no plugins), same assets, alternating in this run:")
    print(f"{'targets':>7} {'no-op':>7} {'plain doit':>10} {'ratio':>6} | {'no-op cpu':>9} {'plain cpu':>9} "
          f"{'ratio':>6} | {'plain range':>13} | {'plain, JSON manifest':>20} {'ratio':>6}")
    for row, info in zip(rows, infos):
        n = info["n"]
        plain, plain_cpu, plain_json = med(n, "plain"), med(n, "plain", 1), med(n, "plain_json")
        row.update(plain_s=plain, plain_cpu_s=plain_cpu, ratio_plain=row["noop_s"] / plain,
                   cpu_ratio_plain=row["noop_cpu_s"] / plain_cpu, plain_json_s=plain_json,
                   ratio_plain_json=row["noop_s"] / plain_json)
        print(f"{n:>7} {row['noop_s']:>7.3f} {plain:>10.3f} {row['ratio_plain']:>6.2f} | {row['noop_cpu_s']:>9.3f} "
              f"{plain_cpu:>9.3f} {row['cpu_ratio_plain']:>6.2f} | {spread(n, 'plain'):>13} | {plain_json:>20.3f} "
              f"{row['ratio_plain_json']:>6.2f}")
    n = big["n"]
    floor, floor_cpu = med(n, "floor"), med(n, "floor", 1)
    extras = {name: (med(n, name), med(n, name, 1)) for name in ("dryrun_uptodate", "dryrun_all", "manifest")}
    for name, label in (("dryrun_uptodate", "`doit dryrun story:<id> provider=stub` (up to date: 0 would run)"),
                        ("dryrun_all", f"`doit dryrun story:<id> provider=gemini` (lists all {n}: provider changed)")):
        wall, cpu = extras[name]
        print(f"{n} targets: {label}: {wall:.3f}s = {wall / floor:.2f}× floor (cpu {cpu:.3f}s = "
              f"{cpu / floor_cpu:.2f}× floor cpu; {spread(n, name)})")
    wall, cpu = extras["manifest"]
    print(f"{n} targets: `storytree manifest`: {wall:.3f}s (cpu {cpu:.3f}s; {spread(n, 'manifest')}; "
          f"{len(samples[(n, 'manifest')])} runs)")
    if (n, "manifest_baseline") in samples:
        old, old_cpu = extras["manifest_baseline"] = (med(n, "manifest_baseline"), med(n, "manifest_baseline", 1))
        print(f"{n} targets: `storytree manifest` with {args.manifest_baseline}'s code: {old:.3f}s (cpu {old_cpu:.3f}s; "
              f"{spread(n, 'manifest_baseline')}): now {wall / old:.2f}× of it, same bytes")
    after = med(n, "noop_after_manifest")
    after_rss = max(row[2] for row in samples[(n, "noop_after_manifest")]) / 1024
    extras["noop_after_manifest"] = (after, med(n, "noop_after_manifest", 1))
    print(f"{n} targets: first no-op right after `storytree manifest` (manifest rewritten): {after:.3f}s = "
          f"{after / floor:.2f}× floor, peak RSS {after_rss:.1f} MiB ({spread(n, 'noop_after_manifest')})")
    print(f"{n} targets: no-op peak RSS {rss_kib / 1024:.1f} MiB = {rss_kib * 1024 / 1e6:.1f} MB "
          f"(getrusage RUSAGE_CHILDREN in a wrapper; rc {rss_rc})")

    print("\n== goals (wall time)")
    for row in rows:
        if row["targets"] == 500:
            verdicts.append(("500 no-op ≤ 0.25 s", row["noop_s"], 0.25, "s"))
            verdicts.append(("500 no-op ≤ 2.0× floor", row["ratio"], 2.0, "×"))
        if row["targets"] == 5000:
            verdicts.append(("5,000 no-op ≤ 1.5× floor", row["ratio"], 1.5, "×"))
        verdicts.append((f"{row['targets']:,} no-op ≤ plain-doit no-op", row["ratio_plain"], 1.0, "×"))
    if n == 5000:
        verdicts.append(("5,000 dry-run listing all ≤ 2.0× floor", extras["dryrun_all"][0] / floor, 2.0, "×"))
        verdicts.append(("5,000 dry-run, up to date ≤ 2.0× floor", extras["dryrun_uptodate"][0] / floor, 2.0, "×"))
        verdicts.append(("5,000 manifest ≤ 2 s", extras["manifest"][0], 2.0, "s"))
        verdicts.append(("5,000 no-op peak RSS ≤ 150 MB", rss_kib * 1024 / 1e6, 150.0, "MB"))
    for label, value, limit, unit in verdicts:
        verdict = "MET" if value <= limit else f"MISSED by {value / limit:.2f}× ({value - limit:+.3g} {unit})"
        print(f"  {label:<42} {value:8.3f} {unit:<2}  {verdict}")
    print(f"\nbench wall time {time.perf_counter() - started:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "extras": extras, "rss_kib": rss_kib,
                                               "samples": {f"{k[0]}/{k[1]}": v for k, v in samples.items()},
                                               "verdicts": verdicts}, indent=1))
    if args.profile:
        profile(big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
