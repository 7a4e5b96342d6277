"""Byte-identity checks for the fast manifest and prompt serialisation (issue: `storytree manifest` ≤ 2 s).

    .venv/bin/python bench/check_identity.py                 # in-process checks + old/new comparison
    .venv/bin/python bench/check_identity.py --baseline 700db7d --sizes 500,5000 --random 3000

1. YAML (core/manifest_file.py): `dump_yaml` (the fast writer) against `yaml_dump` (PyYAML + libyaml, what was
   written before) on real manifests and on manifests whose every field was replaced by adversarial values
   (quotes, ': ', ' #', leading indicators, YAML 1.1 implicit types such as `16:9`, `1e3`, `yes`, `~`, `0x1F`,
   long flow lists that wrap at 120 columns, non-ASCII, U+2028, control characters, floats, empty collections,
   objects shared between targets, which PyYAML writes as anchors). Also: the committed sample manifest is reproduced
   byte for byte and reads back to the same Manifest.
2. JSON (core/prompts.py): `_pretty` (orjson when it provably agrees) against `json.dumps(indent=2,
   ensure_ascii=False)` on adversarial values: every code point in strings and keys, U+2028/U+2029, control
   characters, floats (1e100, 0.1, -0.0, 1e16, 5e-324, NaN, ±Infinity), ints beyond 64 bits, nested empty lists and
   dicts, keys with quotes, deep nesting; and on every prompt document of the sample story.
3. Old against new code, in subprocesses: a git revision's `storytree_build` (exported under bench/out/) and the
   working tree each import the sample story, a copy of it with adversarial design values and synthetic stories,
   write the manifest and render every target's prompt; manifest bytes and every prompt (user and system text) must
   be identical.

Exit status 0 when everything is identical, 1 otherwise. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
SAMPLE = REPO / "samples" / "sample-story.json"
SAMPLE_ID = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"
OUT = REPO / "bench" / "out"
BEFORE = "700db7d"  # the last revision that wrote manifests with PyYAML alone and prompts with json.dumps alone

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        failures.append(what)
        print(f"  DIFFERENT: {what}", flush=True)


# --- adversarial values -----------------------------------------------------------------------------------------

TRICKY_STRINGS = [
    "", " ", "a b", " lead", "trail ", "a: b", "a:b", "a:", ":a", "a #b", "a#b", "#a", "- a", "-a", "-", "--", "---",
    "--- a", "...", ". a", ".a", "?", "? a", "?a", "!a", "&a", "*a", "|", ">", "%a", "@a", "`a", "'a", "a'b", '"a',
    'a"b', "[a", "a]", "{a", "a}", ",a", "a,b", "a, b", "=", "<<", "~", "null", "Null", "NULL", "true", "True", "yes",
    "Yes", "no", "NO", "on", "off", "y", "n", "Y", "0", "00", "007", "0o7", "0x1F", "0b101", "1_000", "+1", "-1", "1.5",
    "1e3", "1.0e+3", ".5", "-.inf", ".nan", ".NaN", "16:9", "1:30", "1:30.5", "2026-11-29", "2026-11-29T10:00:00Z",
    "2026-1-1", "16:9:", "image:scenelet-1_1", "ref:character.a.b-1", "a/b/c.png", "/abs/path", "_x", "x_", "a.b.",
    "naïve", "Ωmega", "日本語", "emoji 🎬", "\u2028", "a\u2029b", "\u0085", "\u00a0", "\ufeff", "\x7f", "tab\tin",
    "new\nline", "cr\rhere", "\x00nul", "\x1b[0m", "back\\slash", "x" * 130, "word " * 40, "a" * 119 + " b",
    "b0000000-0000-4000-8000-000000005000/shots/scenelet-1/shot-1.mp4",
    "ea5d6dda0183850bed2e692123a31398d620dd32d15b76291d723d183c0cbe25",
    "1234567890123456789012345678901234567890123456789012345678901234", "12e4", "0.", "-0", "+.5", "1__0",
]
TRICKY_SCALARS = [0, 1, -1, 7, 2**63, -(2**63) - 1, 10**40, True, False, None, 0.0, -0.0, 0.1, 1e100, 1e16, 1e-7,
                  5e-324, 123456789.123, float("inf"), float("-inf")]


def tricky_json_values() -> list:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    values: list = [every, {every[:5000]: every[5000:9000]}, "\u2028\u2029", "\x00\x01\x1f\x7f\x80\x9f",
                    "\ud800 lone surrogate", {"lone \udfff": 1}]
    values += TRICKY_STRINGS + TRICKY_SCALARS + [float("nan"), 2**64, 2**64 - 1, -(2**63), -(2**63) - 1, 10**100]
    values += [[], {}, [[]], [{}], {"a": []}, {"a": {}}, [[], {}, [[{}]]], {"": ""}, {'k"ey': "v"}, {"k\\": "\\"},
               {"a": {"b": {"c": [1, 2.5, None, True, "x"]}}}, {"x": [1e100, 0.1, -0.0, 1e-5, 1e21, 1.5e300]},
               {"big": 2**70}, {"nested": [[[[[]]]]]}, list(range(50)), {str(i): i for i in range(30)}]
    deep: object = "leaf"
    for _ in range(300):  # deeper than orjson's limit (254): must take the json.dumps path
        deep = [deep]
    values.append(deep)
    rng = random.Random(7)
    for _ in range(400):
        values.append(random_json(rng, 4))
    return values


def random_json(rng: random.Random, depth: int) -> object:
    kind = rng.random()
    if depth <= 0 or kind < 0.45:
        pick = rng.random()
        if pick < 0.5:
            return rng.choice(TRICKY_STRINGS)
        if pick < 0.8:
            return rng.choice(TRICKY_SCALARS)
        return "".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0, 0x20), rng.randrange(0x80, 0xD800),
                                       rng.randrange(0xE000, 0x110000)])) for _ in range(rng.randrange(0, 12)))
    if kind < 0.7:
        return [random_json(rng, depth - 1) for _ in range(rng.randrange(0, 5))]
    return {rng.choice(TRICKY_STRINGS): random_json(rng, depth - 1) for _ in range(rng.randrange(0, 5))}


# --- 2. JSON ------------------------------------------------------------------------------------------------------


def check_json() -> None:
    from storytree_build.core import prompts

    values = tricky_json_values()
    fast = 0
    for n, value in enumerate(values):
        try:
            expected = json.dumps(value, ensure_ascii=False, indent=2)
        except (ValueError, RecursionError) as exc:  # not serialisable by json either: _pretty must raise too
            try:
                prompts._pretty(value)
                check(False, f"json value #{n}: json.dumps raised {exc!r}, _pretty did not")
            except type(exc):
                pass
            continue
        got = prompts._pretty(value)
        check(got == expected, f"json value #{n} ({repr(value)[:60]})")
        try:
            import orjson

            fast += orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() == expected
        except (TypeError, ValueError):
            pass
    print(f"json: {len(values)} adversarial values identical to json.dumps(indent=2, ensure_ascii=False) "
          f"({fast} of them where orjson alone would also have matched)", flush=True)


# --- 1. YAML ------------------------------------------------------------------------------------------------------


def mutate_manifest(data: dict, rng: random.Random) -> dict:
    """Replace a few fields of a few targets by adversarial values, keeping the manifest's shape."""
    data = copy.deepcopy(data)
    pool = TRICKY_STRINGS + TRICKY_SCALARS
    for target in rng.sample(data["targets"], min(len(data["targets"]), rng.randrange(1, 4))):
        for _ in range(rng.randrange(1, 4)):
            where = rng.random()
            if where < 0.3:
                target[rng.choice(list(target))] = rng.choice(pool)
            elif where < 0.5 and isinstance(target.get("config"), dict):
                target["config"][rng.choice(TRICKY_STRINGS + ["aspect_ratio", "k"])] = rng.choice(pool)
            elif where < 0.65:
                target["depends_on"] = [rng.choice(TRICKY_STRINGS) for _ in range(rng.randrange(1, 9))]
            elif where < 0.75:
                target["db"] = [{"column": "c", "path": [rng.choice(pool) for _ in range(rng.randrange(0, 12))]}]
            elif where < 0.8:
                target["config"] = rng.choice([{}, [], {"nested": {"deeper": rng.choice(pool)}}, [[1]], [{"a": 1}],
                                               [None], {"list": [rng.choice(pool), {"x": 1}]}])
            elif where < 0.85:
                target["references"] = rng.choice([[], [{}], [{"kind": rng.choice(pool)}], ["x"]])
            elif where < 0.9:
                other = rng.choice(data["targets"])
                target["config"] = other.get("config")  # shared object: PyYAML writes an anchor and an alias
            elif where < 0.95:
                data[rng.choice(["display_name", "story_id", "schema_version"])] = rng.choice(pool)
            else:
                target["task"] = "x" * rng.randrange(100, 140)
                target["depends_on"] = ["y" * rng.randrange(1, 60) for _ in range(rng.randrange(1, 9))]
    return data


def check_yaml(manifests: dict[str, dict], random_cases: int) -> None:
    from storytree_build.core.manifest.file import _FastYaml, _load_resolvers, _Slow, dump_yaml, yaml_dump

    _load_resolvers()

    for name, data in manifests.items():
        check(dump_yaml(data) == yaml_dump(data), f"yaml: manifest {name}")
    for name, data in manifests.items():  # how much of each real manifest the fast writer handled itself
        slow = 0
        for target in data["targets"]:
            try:
                _FastYaml().mapping(target, 2, "- ", [])
            except _Slow:
                slow += 1
        print(f"yaml: {name}: {len(data['targets']) - slow} of {len(data['targets'])} targets on the fast path",
              flush=True)
    rng = random.Random(11)
    pool = list(manifests.values())
    for case in range(random_cases):
        base = rng.choice(pool)
        start = rng.randrange(len(base["targets"]))
        window = {**base, "targets": base["targets"][start:start + rng.randrange(1, 40)]}
        data = mutate_manifest(window, rng)
        check(dump_yaml(data) == yaml_dump(data), f"yaml: adversarial case {case}")
    for n, value in enumerate(TRICKY_STRINGS + TRICKY_SCALARS):  # each value in every position of a target
        for key in ("task", "output", "model", "prompt_sha256"):
            data = copy.deepcopy(manifests["sample"])
            data["targets"][0][key] = value
            data["targets"][1]["depends_on"] = [value, "a", value]
            data["targets"][2]["db"][0]["path"] = [value] * 9
            data["targets"][3]["config"][value if isinstance(value, str) and value else "k"] = value
            check(dump_yaml(data) == yaml_dump(data), f"yaml: value #{n} {value!r} in {key}")
    for depth in range(14):  # flow sequences that start past column 120 (libyaml breaks before the first item)
        for key_length in (90, 100):
            inner: dict = {"k" * key_length: ["x" * 30, "image:a_1", "y", 16, "zz" * 40]}
            for level in range(depth):
                inner = {f"n{level}": inner}
            data = {"schema_version": 1, "targets": [{"task": "t", "config": inner}, {"task": "u"}]}
            check(dump_yaml(data) == yaml_dump(data), f"yaml: flow sequence at depth {depth}, key {key_length}")
    print(f"yaml: {len(manifests)} manifests, {random_cases} adversarial manifests and "
          f"{len(TRICKY_STRINGS + TRICKY_SCALARS)} values in every position identical to PyYAML", flush=True)


# --- 3. old against new code ----------------------------------------------------------------------------------

CHILD = r"""
import json, os, sys
from pathlib import Path
from storytree_build.cli import main
from storytree_build.settings import load_settings
from storytree_build.store import open_store
from storytree_build.core.story import StoryView
from storytree_build.core.prompts import PromptRenderer
from storytree_build.core.manifest.file import load_manifest_file, manifest_path
import storytree_build
export, story_id, out = sys.argv[1], sys.argv[2], sys.argv[3]
assert main(["import", export]) == 0 and main(["manifest", story_id]) == 0
settings = load_settings()
path = manifest_path(settings.manifests_dir, story_id)
manifest = load_manifest_file(path)
view = StoryView.from_snapshot(open_store(settings).load_story(story_id))
renderer = PromptRenderer(settings.templates_dir, settings.system_prompts_dir)
prompts = {}
for target in manifest.targets:
    p = renderer.for_target(view, target)
    assert p.sha256 == target.prompt_sha256, target.task
    prompts[target.task] = [p.user, p.system]
Path(out).write_text(json.dumps({"package": storytree_build.__file__, "manifest": path.read_text(encoding="utf-8"),
                                 "prompts": prompts}, ensure_ascii=False))
"""


def export_revision(rev: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", rev], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    dest = OUT / f"baseline-{sha[:12]}"
    if not (dest / "storytree_build").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "storytree_build"], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_child(package_dir: Path | None, export: Path, story_id: str, work: Path) -> dict:
    proj = work / ("old" if package_dir else "new")
    shutil.rmtree(proj, ignore_errors=True)
    (proj / "manifests").mkdir(parents=True)
    for folder in ("templates", "system_prompts"):
        shutil.copytree(REPO / folder, proj / folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTREE_", "GEMINI_", "GOOGLE_", "SUPABASE_"))}
    env.update(STORYTREE_ROOT=str(proj), STORYTREE_STATE_DIR=str(proj / ".storytree"),
               STORYTREE_DB=str(proj / ".storytree" / "story.sqlite"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    if package_dir:
        env["PYTHONPATH"] = str(package_dir)
    out = proj / "result.json"
    p = subprocess.run([sys.executable, "-c", CHILD, str(export), story_id, str(out)], cwd=proj, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"child failed ({'old' if package_dir else 'new'} code):\n{p.stdout}\n{p.stderr}")
    result = json.loads(out.read_text(encoding="utf-8"))
    expected = str(package_dir / "storytree_build") if package_dir else str(REPO / "storytree_build")
    assert result["package"].startswith(expected), (result["package"], expected)  # the intended code ran
    return result


def adversarial_story() -> dict:
    """The sample story with adversarial values in the raw documents that prompts are rendered from."""
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    story = data["stories"][0]
    extras = {"unicode": "naïve Ωmega 日本語 🎬 \u00a0\ufeff", "separators": "line\u2028para\u2029end",
              "controls": "\x00\x01\x07\x1b\x1f\x7f tab\t nl\n cr\r", "quotes": "she said \"hi\" \\o/ 'x'",
              "floats": [1e100, 0.1, -0.0, 1e16, 1e-7, 5e-324, 123456789.123, 2.5], "big": 2**70, "ints": [0, -1, 2**63],
              "empties": {"l": [], "d": {}, "nested": [[], {}, [[]], [{}]]}, 'key "quoted"': {"a\\b": "c"},
              "bools": [True, False, None], "nan_like": "NaN Infinity -Infinity"}
    for design in story["visual_design_document"]["character_designs"]:
        design["adversarial"] = extras
    for design in story["visual_design_document"]["environment_designs"]:
        design["adversarial_env"] = {"floats": [0.5, 1e21], "text": "a: b # c\u2028"}
    story["visual_design_document"]["global_aesthetic"]["adversarial"] = extras
    for n, shot in enumerate(data["shots"]):
        payload = shot["storyboard_payload"]
        payload["compositionAndContent"] += f" — «quotes» \"{n}\" \\ \u2028 \x01 日本 🎬"
        payload["continuityNotes"] += " \t tab and \u2029"
    return data


def check_old_new(rev: str, sizes: list[int]) -> None:
    import noop

    package = export_revision(rev)
    stories: list[tuple[str, dict, str]] = [("sample", json.loads(SAMPLE.read_text(encoding="utf-8")), SAMPLE_ID),
                                            ("sample, adversarial values", adversarial_story(), SAMPLE_ID)]
    for n in sizes:
        story_id, export = noop.synthetic_export(n)
        stories.append((f"synthetic {n}", export, story_id))
    with tempfile.TemporaryDirectory() as tmp:
        for name, export, story_id in stories:
            work = Path(tmp) / name.replace(" ", "_").replace(",", "")
            work.mkdir()
            export_file = work / "export.json"
            export_file.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
            old = run_child(package, export_file, story_id, work)
            new = run_child(None, export_file, story_id, work)
            check(old["manifest"] == new["manifest"], f"old/new: manifest bytes of {name}")
            check(old["prompts"] == new["prompts"], f"old/new: prompts of {name}")
            sha = hashlib.sha256(new["manifest"].encode()).hexdigest()[:16]
            print(f"old ({rev}) = new: {name}: manifest {len(new['manifest']):,} bytes (sha256 {sha}…), "
                  f"{len(new['prompts'])} prompts"
                  f"{'' if old['manifest'] == new['manifest'] and old['prompts'] == new['prompts'] else ' — DIFFERENT'}",
                  flush=True)


def real_manifests(sizes: list[int]) -> dict[str, dict]:
    """Manifest data of the sample story and the synthetic ones, built in-process with the working tree's code."""
    import noop
    from storytree_build.cli import main
    from storytree_build.core.manifest.build import build_manifest
    from storytree_build.core.manifest.file import dump_manifest, load_manifest_file
    from storytree_build.core.story import StoryView
    from storytree_build.settings import load_settings
    from storytree_build.store import open_store

    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        saved = dict(os.environ)
        try:
            os.environ.update(STORYTREE_ROOT=str(REPO), STORYTREE_STATE_DIR=tmp, STORYTREE_DB=f"{tmp}/story.sqlite")
            exports = [(SAMPLE, SAMPLE_ID)]
            for n in sizes:
                story_id, export = noop.synthetic_export(n)
                path = Path(tmp) / f"export-{n}.json"
                path.write_text(json.dumps(export), encoding="utf-8")
                exports.append((path, story_id))
            for path, story_id in exports:
                assert main(["import", str(path)]) == 0
                settings = load_settings()
                view = StoryView.from_snapshot(open_store(settings).load_story(story_id))
                manifest = build_manifest(view, settings.generation, renderer)
                out["sample" if story_id == SAMPLE_ID else story_id] = manifest.model_dump(mode="json", exclude_none=True)
                if story_id == SAMPLE_ID:
                    committed = REPO / "manifests" / f"{SAMPLE_ID}.yaml"
                    check(dump_manifest(manifest) == committed.read_text(encoding="utf-8"),
                          "committed sample manifest reproduced byte for byte")
                    check(load_manifest_file(committed) == manifest, "committed sample manifest reads back")
                    print(f"yaml: committed manifests/{SAMPLE_ID}.yaml reproduced byte for byte and reads back",
                          flush=True)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BEFORE,
                    help=f"git revision whose storytree_build is the old code (default {BEFORE}: the last one before "
                         "the fast manifest and prompt writers)")
    ap.add_argument("--sizes", default="500", help="synthetic story sizes (default 500; 5000 takes ~1 min more)")
    ap.add_argument("--random", type=int, default=2000, help="adversarial YAML manifests (default 2000)")
    ap.add_argument("--no-old-new", action="store_true", help="skip the subprocess comparison with --baseline")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    check_json()
    check_yaml(real_manifests(sizes), args.random)
    if not args.no_old_new:
        check_old_new(args.baseline, sizes)
    print(f"\n{'ALL IDENTICAL' if not failures else f'{len(failures)} DIFFERENCES'}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
