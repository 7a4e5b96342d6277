"""Building a story's manifest: `build_manifest` validates the whole story (every problem in one error, before anything
can be spent) and lists one target per output file (see `model.py`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import InputError, collect
from .. import naming
from ..ids import require_safe_id
from .model import DbLocation, Manifest, ReferenceEntry, ShotKey, Target

if TYPE_CHECKING:  # building a manifest needs the prompt machinery; loading one (every doit run) must not
    from ..generation import GenerationSettings
    from ..prompts import PromptRenderer, Reference, RenderedPrompt
    from ..story import StoryView


def _key(container: dict[str, Any] | None, snake: str, *aliases: str) -> str:
    if isinstance(container, dict):
        for key in (snake, *aliases):
            if key in container:
                return key
    return snake


def image_units(config: dict[str, Any]) -> dict[str, Any]:
    return {"images": 1, "image_size": config.get("image_size")}


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Building and writing a manifest allocates millions of short-lived objects (prompt documents, targets), almost
    none of them cyclic; with the default thresholds the collector walks the whole story over and over (~0.2-0.3 s
    of `storytree manifest` at 5,000 targets). Raised while building, as the no-op does while doit loads tasks."""
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


MAX_PROMPT_BYTES = 256 * 1024  # a rendered prompt (system + user text) this big is a story-data accident


def prompt_problems(task: str, prompt: RenderedPrompt) -> list[str]:
    size = len(prompt.user.encode("utf-8")) + len((prompt.system or "").encode("utf-8"))
    if size <= MAX_PROMPT_BYTES:
        return []
    return [f"{task}: the rendered prompt ({prompt.template}) is {size:,} bytes, more than the limit of "
            f"{MAX_PROMPT_BYTES:,}; shorten the story text it is made from (a design document, a storyboard field) "
            "and write the manifest again."]


def build_manifest(story: StoryView, generation: GenerationSettings, renderer: PromptRenderer) -> Manifest:
    with fewer_gc_passes():
        return _build_manifest(story, generation, renderer)


def _build_manifest(story: StoryView, gen: GenerationSettings, renderer: PromptRenderer) -> Manifest:
    from ..prompts import (MODEL_SHEET_TYPE, environment_reference, key_frame_references,
                          model_sheet_reference, video_references)
    from ..story import raw_designs

    sid = story.story_id
    problems = list(story.problems)
    targets: list[Target] = []
    try:
        require_safe_id(sid, "story id")
    except InputError as exc:
        problems.append(str(exc))

    vdd_chars = {i: (n, key) for n, (i, _, key) in enumerate(raw_designs(story.vdd_raw, "character"))}
    vdd_envs = {i: (n, key) for n, (i, _, key) in enumerate(raw_designs(story.vdd_raw, "environment"))}
    for design_id in [*vdd_chars, *vdd_envs]:
        try:
            require_safe_id(design_id, "visual_design_document design id")
        except InputError as exc:
            problems.append(str(exc))

    # Visual references: every character plate and environment keyframe of the VRP.
    if story.vrp is not None:
        vrp = story.vrp_raw or {}
        sheets_key = _key(vrp, "character_model_sheets", "characterModelSheets")
        seen: set[str] = set()
        for i, sheet in enumerate(story.vrp.character_model_sheets):
            cid = sheet.character_id
            if cid in seen:
                problems.append(f"visual_reference_package: character {cid} has more than one model-sheet entry.")
            seen.add(cid)
            if story.vdd is not None and cid not in vdd_chars:
                problems.append(f"visual_reference_package.character_model_sheets[{i}]: unknown character id {cid!r} "
                                "(not in visual_design_document).")
            if not any(p.type.strip().upper() == MODEL_SHEET_TYPE for p in sheet.reference_plates):
                problems.append(f"visual_reference_package: character {cid} has no {MODEL_SHEET_TYPE} plate.")
            plates_key = _key(vrp[sheets_key][i], "reference_plates", "referencePlates")
            counts: dict[str, int] = {}
            first_sheet_done = False
            for j, plate in enumerate(sheet.reference_plates):
                kind_key = naming.kebab(plate.type)
                counts[kind_key] = counts.get(kind_key, 0) + 1
                n = counts[kind_key]
                config = gen.character_plate.model_dump(exclude={"model"})
                prompt = renderer.for_kind(story, "character_plate", plate_prompt=plate.image_generation_prompt)
                problems += prompt_problems(naming.plate_task(cid, plate.type, n), prompt)
                db = [DbLocation(column="visual_reference_package", path=[sheets_key, i, plates_key, j, "image_path"])]
                if plate.type.strip().upper() == MODEL_SHEET_TYPE and not first_sheet_done and cid in vdd_chars:
                    first_sheet_done = True
                    index, key = vdd_chars[cid]
                    db.append(DbLocation(column="visual_design_document",
                                         path=[key, index, "character_model_sheet_image_path"]))
                targets.append(Target(
                    task=naming.plate_task(cid, plate.type, n), kind="character_plate",
                    output=naming.character_plate(sid, cid, plate.type, n), db=db,
                    model=gen.character_plate.model, config=config, template=prompt.template,
                    prompt_sha256=prompt.sha256, units=image_units(config)))
        envs_key = _key(vrp, "environment_keyframes", "environmentKeyframes")
        seen = set()
        for i, entry in enumerate(story.vrp.environment_keyframes):
            eid = entry.environment_id
            if eid in seen:
                problems.append(f"visual_reference_package: environment {eid} has more than one keyframes entry.")
            seen.add(eid)
            if story.vdd is not None and eid not in vdd_envs:
                problems.append(f"visual_reference_package.environment_keyframes[{i}]: unknown environment id {eid!r} "
                                "(not in visual_design_document).")
            frames_key = _key(vrp[envs_key][i], "keyframes", "environment_keyframes_entries")
            for j, keyframe in enumerate(entry.keyframes):
                n = j + 1
                config = gen.environment_keyframe.model_dump(exclude={"model"})
                prompt = renderer.for_kind(story, "environment_keyframe", plate_prompt=keyframe.image_generation_prompt)
                problems += prompt_problems(naming.keyframe_task(eid, n), prompt)
                db = [DbLocation(column="visual_reference_package", path=[envs_key, i, frames_key, j, "image_path"])]
                if n == 1 and eid in vdd_envs:
                    index, key = vdd_envs[eid]
                    db.append(DbLocation(column="visual_design_document",
                                         path=[key, index, "environment_reference_image_path"]))
                targets.append(Target(
                    task=naming.keyframe_task(eid, n), kind="environment_keyframe",
                    output=naming.environment_keyframe(sid, eid, n), db=db,
                    model=gen.environment_keyframe.model, config=config, template=prompt.template,
                    prompt_sha256=prompt.sha256, units=image_units(config)))

    # Shots: one key frame and one video each.
    if story.shots and story.vdd is None:
        problems.append("visual_design_document is missing: shots cannot be drawn without designs.")
    if story.shots and story.add is None:
        problems.append("audio_design_document is missing: shot video prompts need it (run CREATE_AUDIO_DESIGN).")
    video_cfg = gen.video
    # Pure functions of the story, called per shot: computed once per id / per reference set (5,000 targets: ~0.3 s).
    sheet_refs = {cid: model_sheet_reference(story, cid) for cid in vdd_chars}
    env_refs = {eid: environment_reference(story, eid) for eid in vdd_envs}
    kf_refs_by_designs: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Reference]] = {}
    kf_config_base = gen.key_frame.model_dump(exclude={"model"})
    v_config_base = video_cfg.model_dump(exclude={"model", "max_reference_images"})
    for shot in story.shots:
        where = f"shot {shot.scenelet_id}#{shot.shot_index}"
        try:
            require_safe_id(shot.scenelet_id, f"{where}: scenelet_id")
        except InputError as exc:
            problems.append(str(exc))
            continue
        # A shot without referencedDesigns (a legacy shot) is drawn from its text alone, as one with empty lists
        # (the reference-image brief): no reference images, and the prompt says none are attached.
        refs = shot.payload.referenced()
        for cid in refs.characters:
            if story.vdd is not None and cid not in vdd_chars:
                problems.append(f"{where}: referencedDesigns.characters names {cid!r}, which is not in visual_design_document.")
            elif (sheet_refs[cid] if cid in sheet_refs else model_sheet_reference(story, cid)) is None:
                expected = naming.character_plate(sid, cid, MODEL_SHEET_TYPE, 1)
                problems.append(f"{where}: character {cid!r} has no {MODEL_SHEET_TYPE} plate in visual_reference_package "
                                f"to use as its reference image (expected {expected}); add one to its "
                                "character_model_sheets entry, or drop the character from the shot's referencedDesigns.")
        for eid in refs.environments:
            if story.vdd is not None and eid not in vdd_envs:
                problems.append(f"{where}: referencedDesigns.environments names {eid!r}, which is not in visual_design_document.")
            elif (env_refs[eid] if eid in env_refs else environment_reference(story, eid)) is None:
                expected = naming.environment_keyframe(sid, eid, 1)
                problems.append(f"{where}: environment {eid!r} has no keyframe in visual_reference_package "
                                f"to use as its reference image (expected {expected}); add one to its "
                                "environment_keyframes entry, or drop the environment from the shot's referencedDesigns.")
        if story.vdd is None or story.add is None:
            continue
        shot_key = ShotKey(scenelet_id=shot.scenelet_id, shot_index=shot.shot_index, scenelet_ref=shot.row["scenelet_ref"])
        designs = (tuple(refs.characters), tuple(refs.environments))
        kf_refs = kf_refs_by_designs.get(designs)
        if kf_refs is None:
            kf_refs = kf_refs_by_designs[designs] = key_frame_references(story, shot, gen.max_key_frame_references)
        kf_prompt = renderer.for_kind(story, "key_frame", shot=shot, max_key_frame_references=gen.max_key_frame_references)
        problems += prompt_problems(naming.image_task(shot.key), kf_prompt)
        kf_config = dict(kf_config_base)
        targets.append(Target(
            task=naming.image_task(shot.key), kind="key_frame",
            output=naming.shot_key_frame(sid, shot.scenelet_id, shot.shot_index),
            db=[DbLocation(column="key_frame_image_path", scenelet_id=shot.scenelet_id, shot_index=shot.shot_index)],
            model=gen.key_frame.model, config=kf_config, template=kf_prompt.template,
            system_prompt=kf_prompt.system_file, prompt_sha256=kf_prompt.sha256,
            references=[ReferenceEntry(**r.as_dict()) for r in kf_refs],
            depends_on=sorted({r.task for r in kf_refs}), units=image_units(kf_config), shot=shot_key))
        v_refs = video_references(story, shot, video_cfg.max_reference_images)
        problems += [f"{where}: {p}" for p in video_cfg.problems(len(v_refs))]
        v_prompt = renderer.for_kind(story, "video", shot=shot)
        problems += prompt_problems(naming.video_task(shot.key), v_prompt)
        v_config = dict(v_config_base)
        targets.append(Target(
            task=naming.video_task(shot.key), kind="video",
            output=naming.shot_video(sid, shot.scenelet_id, shot.shot_index),
            db=[DbLocation(column="video_file_path", scenelet_id=shot.scenelet_id, shot_index=shot.shot_index)],
            model=video_cfg.model, config=v_config, template=v_prompt.template, prompt_sha256=v_prompt.sha256,
            references=[ReferenceEntry(**r.as_dict()) for r in v_refs],
            depends_on=sorted({r.task for r in v_refs} | {naming.image_task(shot.key)}),
            units={"video_seconds": video_cfg.duration_seconds, "resolution": video_cfg.resolution}, shot=shot_key))

    outputs: dict[str, str] = {}
    for target in targets:
        if target.output in outputs:
            problems.append(f"targets {outputs[target.output]} and {target.task} would both write {target.output}.")
        outputs[target.output] = target.task
    collect(problems, f"Story {sid} cannot be built until its documents are fixed; nothing was written")
    return Manifest(story_id=sid, display_name=story.snapshot.story["display_name"], targets=targets)

