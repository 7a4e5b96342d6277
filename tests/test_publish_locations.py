"""Publishing writes a built file's path into the story: a manifest location that names no place is refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from storytree_build.core.errors import StoreError
from storytree_build.core.manifest import DbLocation
from support.project import import_story, session_for


def test_a_shot_location_without_a_shot_is_refused_naming_the_target_and_the_fix(project: Path) -> None:
    import_story(project)
    session = session_for(project)
    try:
        target = session.manifest.by_task()["image:scenelet-1_1"]
        nowhere = target.model_copy(update={"db": [DbLocation(column="key_frame_image_path")]})
        with pytest.raises(StoreError, match=r"image:scenelet-1_1: the manifest names neither a JSON path nor a shot "
                                             r"for key_frame_image_path; regenerate it with `storytree manifest`"):
            session.outputs.publish(nowhere)
    finally:
        session.close()
