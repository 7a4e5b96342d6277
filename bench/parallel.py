"""Parallel build benchmark: N independent targets (text-only shot key frames), each with a provider latency of
L seconds, built by
`doit -j c` with the offline provider. Goal (issue 6): wall ≤ 1.10 × N·L/c.

Prints the ratio measured in this run; results go to bench/RESULTS.md by hand.
Usage: .venv/bin/python bench/parallel.py [N] [L] [c]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STORY = "bench-parallel"


def synthetic_story(n: int) -> dict:
    """One scenelet with n text-only shots: n independent key-frame targets, each written to its own shot row."""
    palette = [{"color_name": "ink", "hex_code": "#112233", "usage_notes": "lines"}]
    vdd = {"global_aesthetic": {"visual_style": {"name": "bench", "description": "flat"}, "master_color_palette": palette},
           "character_designs": [{"character_id": "hero", "role": "lead", "detailed_description": {}}],
           "environment_designs": []}
    add = {"sonic_identity": {"musical_direction": "quiet strings", "sound_effect_philosophy": "sparse and close"},
           "narrator_voice_profile": {"character_id": "narrator", "voice_name": "Kore",
                                      "voice_profile": "A calm, warm storyteller's voice."},
           "character_voice_profiles": [], "music_and_ambience_cues": []}
    story = {"id": STORY, "display_name": "Parallel bench", "initial_prompt": "bench", "story_constitution": None,
             "visual_design_document": vdd, "audio_design_document": add, "visual_reference_package": None,
             "created_at": "2026-11-21T00:00:00+00:00", "updated_at": "2026-11-21T00:00:00+00:00"}
    scenelet = {"id": "scenelet-uuid-1", "story_id": STORY, "parent_id": None, "choice_label_from_parent": None,
                "choice_prompt": None, "content": {"description": "bench", "dialogue": [], "shot_suggestions": []},
                "is_branch_point": False, "is_terminal_node": True, "branch_audio_file_path": None,
                "created_at": "2026-11-21T00:00:00+00:00"}
    shots = [{"id": f"shot-{i}", "story_id": STORY, "scenelet_ref": "scenelet-uuid-1", "scenelet_id": "scenelet-1",
              "scenelet_sequence": 1, "shot_index": i, "storyboard_payload": {
                  "framingAndAngle": "wide", "compositionAndContent": f"an empty field, view {i}",
                  "characterActionAndEmotion": "none", "cameraDynamics": "static",
                  "lightingAndAtmosphere": "dusk", "continuityNotes": "none",
                  "referencedDesigns": {"characters": [], "environments": []}, "audioAndNarrative": []},
              "key_frame_image_path": None, "audio_file_path": None, "video_file_path": None,
              "created_at": None, "updated_at": None} for i in range(1, n + 1)]
    return {"stories": [story], "scenelets": [scenelet], "shots": shots}


def scratch_project(root: Path, n: int, **env_extra: str) -> dict[str, str]:
    """A fresh project under bench/out with the synthetic story of n shots imported and its manifest written;
    returns the environment that points storytree at it (no keys or settings inherited from the caller)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for folder in ("templates", "system_prompts"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    (root / "manifests").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYTREE_", "GEMINI_", "GOOGLE_"))}
    env.update(STORYTREE_ROOT=str(root), STORYTREE_STATE_DIR=str(root / ".storytree"), **env_extra)
    bin_dir = Path(sys.executable).parent
    (root / "story.json").write_text(json.dumps(synthetic_story(n)))
    for command in (["import", "story.json"], ["manifest", STORY]):
        subprocess.run([bin_dir / "storytree", *command], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    root = REPO / "bench" / "out" / "parallel"
    env = scratch_project(root, n, STORYTREE_STUB_DELAY=str(latency))
    targets = n
    command = [sys.executable, "-m", "doit", "-j", str(workers), "image", "provider=stub"]
    started = time.perf_counter()
    subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    noop = time.perf_counter() - started
    ideal = targets * latency / workers
    print(f"parallel build: N={targets} targets, L={latency}s, c={workers} threads")
    print(f"  ideal N·L/c = {ideal:.2f}s; wall = {wall:.2f}s; ratio = {wall / ideal:.3f} (goal ≤ 1.10)")
    print(f"  of which process start + load + checks (the no-op of the same command) = {noop:.2f}s; "
          f"ratio without it = {(wall - noop) / ideal:.3f}")


if __name__ == "__main__":
    main()
