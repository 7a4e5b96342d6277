"""A story made by the original system keeps its design-document paths (issue 22 §4), on both stores.

The scratch story is the sample laid out as the original system leaves it (docs original-system.md §2.2, §4.2):
model sheets at `<S>/visuals/characters/<id>/character-model-sheet.png` (stored without a prefix), environment
references at `generated/<S>/visuals/environments/<id>/environment-reference.png` (with it), both recorded in the
visual design document; one VRP plate and one shot key frame already generated at the names storytree also uses.
One model-sheet field points at a file that is gone, and one environment field is empty.

A stub build then leaves the fields that point at the original files alone (the files byte for byte), says so once
per field, adopts the original's files at its own paths, publishes everything else, and `storytree verify` lists the
kept paths as notes (exit 0).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from storytree_build.bootstrap import Session
from storytree_build.building.files import to_png_with_provenance
from storytree_build.core.exit_codes import ExitCode
from storytree_build.settings import Settings
from storytree_build.store import open_build_state, open_store
from support.project import ASSETS, SAMPLE, SAMPLE_ID, run_doit, settings_for, storytree, write_export

S = SAMPLE_ID
KEPT_SHEETS = ("wren-quillfeather", "captain-clank")
GONE_SHEET = "the-cloud-shepherd"  # its field names a file that is no longer there
KEPT_ENVS = ("quillfeather-rooftop-workshop", "puffwick-cloud-pasture")
EMPTY_ENV = "thunderpot-gorge"  # the original never made its reference


def original_sheet(cid: str) -> str:
    return f"{S}/visuals/characters/{cid}/character-model-sheet.png"


def original_env(eid: str) -> str:
    return f"generated/{S}/visuals/environments/{eid}/environment-reference.png"


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def original_layout(project: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The sample export and the asset files as the original system leaves them: (export, {relative path: bytes})."""
    export = json.loads(SAMPLE.read_text())
    story = export["stories"][0]
    files: dict[str, bytes] = {}
    for n, design in enumerate(story["visual_design_document"]["character_designs"]):
        cid = design["character_id"]
        design["character_model_sheet_image_path"] = original_sheet(cid)
        if cid != GONE_SHEET:
            files[original_sheet(cid)] = png((10 * n, 60, 90))
    for n, design in enumerate(story["visual_design_document"]["environment_designs"]):
        eid = design["environment_id"]
        if eid != EMPTY_ENV:
            design["environment_reference_image_path"] = original_env(eid)
            files[original_env(eid).removeprefix("generated/")] = png((90, 10 * n, 60))
    # CREATE_VISUAL_REFERENCE_IMAGES ran for one plate; CREATE_SHOT_IMAGES for one shot (storytree's names too).
    plate = f"{S}/visuals/characters/wren-quillfeather/character-model-sheet-1.png"
    story["visual_reference_package"]["character_model_sheets"][0]["reference_plates"][0]["image_path"] = plate
    files[plate] = png((1, 2, 3))
    shot = next(s for s in export["shots"] if (s["scenelet_id"], s["shot_index"]) == ("scenelet-1", 1))
    shot["key_frame_image_path"] = f"{S}/shots/scenelet-1/shot-1_key_frame.png"
    files[shot["key_frame_image_path"]] = png((4, 5, 6))
    for rel, data in files.items():
        (project / ASSETS / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / ASSETS / rel).write_bytes(data)
    return export, files


@pytest.fixture(params=["sqlite", "supabase"])
def original(request, project: Path, monkeypatch, capsys):  # noqa: ANN001, ANN201
    """The original-system story imported into the store of the parameter, its manifest written."""
    if request.param == "supabase":
        stack = request.getfixturevalue("supabase_stack")
        stack.reset()
        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    export, files = original_layout(project)
    assert storytree(project, "import", str(write_export(project / "original.json", export)),
                     monkeypatch=monkeypatch) == ExitCode.OK
    assert storytree(project, "manifest", S, monkeypatch=monkeypatch) == ExitCode.OK
    capsys.readouterr()
    return export, files


def project_settings(project: Path) -> Settings:
    """The settings the build used (the store of the parameter)."""
    return settings_for(project, **{k: v for k, v in os.environ.items() if k.startswith(("STORYTREE_", "SUPABASE_"))})


def stored_story(project: Path) -> dict[str, Any]:
    """The story rows and its records, read back from the store the build used."""
    settings = project_settings(project)
    store = open_store(settings)
    state = open_build_state(settings, lambda: store)
    try:
        snapshot = store.load_story(S)
        records = state.records(S).all()
    finally:
        state.close()
        store.close()
    return {"story": snapshot.story, "shots": snapshot.shots, "records": records}


def design_paths(story: dict[str, Any]) -> dict[str, Any]:
    vdd = story["visual_design_document"]
    return {**{d["character_id"]: d.get("character_model_sheet_image_path") for d in vdd["character_designs"]},
            **{d["environment_id"]: d.get("environment_reference_image_path") for d in vdd["environment_designs"]}}


def test_a_build_keeps_the_original_design_document_paths_and_publishes_the_rest(original, project: Path,
                                                                                 monkeypatch, capsys) -> None:
    export, files = original
    run = run_doit(project, f"story:{S}", "provider=stub")
    assert run.code == 0, run.output
    stored = stored_story(project)
    paths = design_paths(stored["story"])

    # The fields that point at the original's files still do, in the original's own form; the files are untouched.
    for cid in KEPT_SHEETS:
        assert paths[cid] == original_sheet(cid)
    for eid in KEPT_ENVS:
        assert paths[eid] == original_env(eid)
    for rel, data in files.items():
        assert (project / ASSETS / rel).read_bytes() == data, rel
    # Said once per kept field, naming the story, the field and both paths; never an error.
    kept_lines = [line for line in run.output.splitlines() if "kept original-system path" in line]
    assert len(kept_lines) == len(KEPT_SHEETS) + len(KEPT_ENVS), run.output
    assert (f"story {S}: kept original-system path {original_sheet('wren-quillfeather')} in "
            "visual_design_document.character_designs[0].character_model_sheet_image_path") in run.output
    assert f"{S}/visuals/characters/wren-quillfeather/character-model-sheet-1.png" in kept_lines[0]
    assert f"kept original-system path {original_env('quillfeather-rooftop-workshop')} in " \
           "visual_design_document.environment_designs[0].environment_reference_image_path" in run.output

    # A field pointing nowhere and an empty one get storytree's plate; the dangling one is said.
    ours_gone = f"{S}/visuals/characters/{GONE_SHEET}/character-model-sheet-1.png"
    assert paths[GONE_SHEET] == ours_gone
    assert paths[EMPTY_ENV] == f"{S}/visuals/environments/{EMPTY_ENV}/keyframe_1.png"
    assert (f"visual_design_document.character_designs[2].character_model_sheet_image_path pointed at "
            f"{original_sheet(GONE_SHEET)}, which is no file in the asset folder; it now points at storytree's "
            f"{ours_gone}") in run.output

    # Everything else is published: every plate's and keyframe's image_path, every shot's two paths.
    vrp = stored["story"]["visual_reference_package"]
    plates = [p for sheet in vrp["character_model_sheets"] for p in sheet["reference_plates"]]
    keyframes = [k for entry in vrp["environment_keyframes"] for k in entry["keyframes"]]
    assert all(p["image_path"] for p in plates + keyframes) and len(plates + keyframes) == 12
    for p in plates + keyframes:
        assert (project / ASSETS / p["image_path"]).is_file()
    assert all(s["key_frame_image_path"] and s["video_file_path"] for s in stored["shots"])
    # The original's files at storytree's own paths are adopted (free), not paid for again.
    assert stored["records"]["ref:character.wren-quillfeather.character-model-sheet-1"].origin == "adopted"
    assert stored["records"]["image:scenelet-1_1"].origin == "adopted"

    # verify lists each kept field, not as a problem.
    capsys.readouterr()
    assert storytree(project, "verify", S, "--provider", "stub", monkeypatch=monkeypatch) == ExitCode.OK
    out, err = capsys.readouterr()
    kept_notes = [line for line in out.splitlines() if line.startswith("note:") and "kept original-system path" in line]
    assert len(kept_notes) == len(KEPT_SHEETS) + len(KEPT_ENVS), out
    assert (f"note: ref:character.captain-clank.character-model-sheet-1 ({S}/visuals/characters/captain-clank/"
            f"character-model-sheet-1.png): kept original-system path {original_sheet('captain-clank')} in "
            "visual_design_document.character_designs[1].character_model_sheet_image_path") in out
    assert "repaired:" not in out and "problem:" not in out and "0 repaired, 0 problems" in err
    assert design_paths(stored_story(project)["story"]) == paths  # verify's repair left them alone too

    # The next build is a no-op: nothing published, nothing said again.
    again = run_doit(project, f"story:{S}", "provider=stub")
    assert again.code == 0 and "kept original-system path" not in again.output


def test_clearing_a_kept_field_and_running_verify_shows_storytrees_plate(original, project: Path, monkeypatch,
                                                                         capsys) -> None:
    """The migration note's way to make storytree's plate the one the UI shows."""
    assert run_doit(project, f"story:{S}", "provider=stub").code == 0
    store = open_store(project_settings(project))
    try:
        store.set_document_path(S, "visual_design_document",
                                ["character_designs", 0, "character_model_sheet_image_path"], None)
    finally:
        store.close()
    capsys.readouterr()
    assert storytree(project, "verify", S, "--provider", "stub", monkeypatch=monkeypatch) == ExitCode.OK
    out = capsys.readouterr().out
    assert "repaired: ref:character.wren-quillfeather.character-model-sheet-1" in out
    paths = design_paths(stored_story(project)["story"])
    assert paths["wren-quillfeather"] == f"{S}/visuals/characters/wren-quillfeather/character-model-sheet-1.png"
    assert paths["captain-clank"] == original_sheet("captain-clank")  # the others stay as they were
    assert (project / ASSETS / original_sheet("wren-quillfeather")).is_file()  # the original's file stays


def test_publishing_a_kept_field_twice_in_one_session_says_so_once(original, project: Path, caplog) -> None:
    """A session that publishes the same target again (a publish-only step after a kept edit, verify's repair)
    names each kept field once."""
    assert run_doit(project, "ref:character.wren-quillfeather.character-model-sheet-1", "provider=stub").code == 0
    session = Session.open(project_settings(project), S, "stub")
    try:
        target = session.target("ref:character.wren-quillfeather.character-model-sheet-1")
        caplog.clear()  # the build's own line
        with caplog.at_level(logging.INFO, logger="storytree"):
            session.outputs.publish(target)
            session.outputs.publish(target)
    finally:
        session.close()
    assert sum("kept original-system path" in r.getMessage() for r in caplog.records) == 1
    assert design_paths(stored_story(project)["story"])["wren-quillfeather"] == original_sheet("wren-quillfeather")


def test_a_field_pointing_at_another_file_of_ours_is_updated(original, project: Path) -> None:
    """Ours wins over "an existing file": a field naming another target's output (here the character's action shot,
    built) is storytree's to update."""
    plate = "ref:character.wren-quillfeather.character-model-sheet-1"
    action = f"{S}/visuals/characters/wren-quillfeather/character-action-shot-1.png"
    assert run_doit(project, plate, "ref:character.wren-quillfeather.character-action-shot-1",
                    "provider=stub").code == 0
    store = open_store(project_settings(project))
    try:
        store.set_document_path(S, "visual_design_document",
                                ["character_designs", 0, "character_model_sheet_image_path"], action)
    finally:
        store.close()
    session = Session.open(project_settings(project), S, "stub")
    try:
        session.outputs.publish(session.target(plate))
    finally:
        session.close()
    assert design_paths(stored_story(project)["story"])["wren-quillfeather"] == \
        f"{S}/visuals/characters/wren-quillfeather/character-model-sheet-1.png"


def test_a_field_pointing_at_a_plate_storytree_made_for_another_story_is_updated(original, project: Path) -> None:
    """A story imported as a copy of a built one names the first story's plate: storytree made that file (its PNG
    says so), so the copy's build writes its own plate there."""
    plate = "ref:character.wren-quillfeather.character-model-sheet-1"
    other = "0b9e6a1c-3d2f-4e5a-8b7c-9d0e1f2a3b4c/visuals/characters/wren-quillfeather/character-model-sheet-1.png"
    assert run_doit(project, plate, "provider=stub").code == 0
    session = Session.open(project_settings(project), S, "stub")
    try:
        target = session.target(plate)
        made = to_png_with_provenance(png((7, 8, 9)), target, "stub", "2026-12-01T00:00:00Z", "s" * 64)
        (project / ASSETS / other).parent.mkdir(parents=True)
        (project / ASSETS / other).write_bytes(made)
        store = open_store(project_settings(project))
        try:
            store.set_document_path(S, "visual_design_document",
                                    ["character_designs", 0, "character_model_sheet_image_path"], other)
        finally:
            store.close()
        session.outputs.publish(target)
    finally:
        session.close()
    assert design_paths(stored_story(project)["story"])["wren-quillfeather"] == target.output
    assert (project / ASSETS / other).read_bytes() == made  # the other story's file is untouched
