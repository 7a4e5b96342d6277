"""A manifest a build holds keeps one copy of each equal part (storytree_build/core/manifest/compact.py), and
sharing changes nothing it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from storytree_build.core.manifest import compact as compact_module
from storytree_build.core.manifest.compact import compact
from storytree_build.core.manifest.file import load_manifest_file
from storytree_build.core.manifest.model import Manifest
from support.project import CONSENT_VAR, SAMPLE_ID, import_story, new_project, run_doit

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "manifests" / "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10.yaml"


def test_the_sample_manifest_says_the_same_once_compacted() -> None:
    manifest = load_manifest_file(SAMPLE)
    dumped, fields_sets = manifest.model_dump_json(), [t.model_fields_set for t in manifest.targets]
    assert compact(manifest) is manifest
    assert manifest.model_dump_json() == dumped
    assert [t.model_fields_set for t in manifest.targets] == fields_sets
    assert Manifest.model_validate_json(manifest.model_dump_json()) == load_manifest_file(SAMPLE)


def test_equal_parts_are_one_object() -> None:
    manifest = compact(load_manifest_file(SAMPLE))
    frames = [t for t in manifest.targets if t.kind == "key_frame"]
    by_entry: dict[tuple[str, ...], set[int]] = {}
    for target in frames:
        for ref in target.references:
            by_entry.setdefault((ref.kind, ref.id, ref.path, ref.task), set()).add(id(ref))
    repeated = [key for key, objects in by_entry.items()
                if sum(1 for t in frames for r in t.references if (r.kind, r.id, r.path, r.task) == key) > 1]
    assert repeated, "the sample's shots share references"
    assert all(len(by_entry[key]) == 1 for key in repeated)
    assert len({id(t.config) for t in frames}) == len({repr(t.config) for t in frames})
    assert len({id(t.units) for t in frames}) == len({repr(t.units) for t in frames})
    fields_sets = [t.__pydantic_fields_set__ for t in manifest.targets]
    assert len({id(names) for names in fields_sets}) == len({frozenset(names) for names in fields_sets}) < len(fields_sets)


def test_equal_but_differently_typed_values_are_not_shared() -> None:
    manifest = load_manifest_file(SAMPLE)
    first, second = [t for t in manifest.targets if t.kind == "key_frame"][:2]
    first.__dict__["units"] = {"images": 1}
    second.__dict__["units"] = {"images": True}  # equal to 1 as a dict key, but dumps as `true`
    compact(manifest)
    assert first.units is not second.units
    assert second.model_dump()["units"] == {"images": True}


def test_a_run_that_builds_compacts_its_manifest_and_a_no_op_does_not(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = import_story(new_project(tmp_path / "project"))
    for name, value in {"STORYTREE_ROOT": str(root), "STORYTREE_STATE_DIR": str(root / ".storytree"),
                        "STORYTREE_STUB_DELAY": "0", CONSENT_VAR[0]: CONSENT_VAR[1]}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    compacted: list[str] = []
    real = compact_module.compact

    def recording(manifest: Manifest) -> Manifest:
        compacted.append(manifest.story_id)
        return real(manifest)

    monkeypatch.setattr(compact_module, "compact", recording)
    built = run_doit(root, "ref", "provider=stub")
    assert built.code == 0 and "0 built" not in built.output, built.output
    assert compacted == [SAMPLE_ID]
    again = run_doit(root, "ref", "provider=stub")
    assert again.code == 0 and "storytree: 0 built" in again.output, again.output
    assert compacted == [SAMPLE_ID]  # the no-op only read it
