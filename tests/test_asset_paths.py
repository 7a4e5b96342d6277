"""`inside`: where a build may write under the asset folder. A folder link that stays inside the asset folder is
followed; one that leads out is refused before anything is written; plain folders (the usual case) are checked
without resolving every folder from `/`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storytree_build.building.files import inside
from storytree_build.core.errors import EnvironmentFault


def test_a_path_in_plain_folders_is_inside(tmp_path: Path) -> None:
    (tmp_path / "assets" / "story").mkdir(parents=True)
    assert inside(tmp_path / "assets", "story/shots/a.png") == tmp_path / "assets" / "story" / "shots" / "a.png"


def test_a_folder_link_that_stays_inside_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "assets"
    (root / "real").mkdir(parents=True)
    os.symlink(root / "real", root / "linked")
    assert inside(root, "linked/a.png") == root / "linked" / "a.png"


@pytest.mark.parametrize("depth", ["out/a.png", "story/out/a.png"])
def test_a_folder_link_out_of_the_asset_folder_is_refused(tmp_path: Path, depth: str) -> None:
    root, elsewhere = tmp_path / "assets", tmp_path / "elsewhere"
    (root / "story").mkdir(parents=True)
    elsewhere.mkdir()
    os.symlink(elsewhere, root / Path(depth).parent)
    with pytest.raises(EnvironmentFault, match="leads out of the asset folder"):
        inside(root, depth)


def test_dot_dot_out_of_the_asset_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "assets" / "story").mkdir(parents=True)
    with pytest.raises(EnvironmentFault, match="leads out of the asset folder"):
        inside(tmp_path / "assets", "story/../../a.png")
