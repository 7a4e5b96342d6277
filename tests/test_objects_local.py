"""The local object store: content-addressed, read-only, atomic in and out, and never changed by an asset edit."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from storytree_build.core.errors import ConfigError, EnvironmentFault, InputError
from storytree_build.files.atomic import FILE_MODE
from storytree_build.objects.errors import InvalidObjectId, ObjectCorrupt, ObjectNotFound, ObjectStoreFault
from storytree_build.objects.local import LocalObjects
from support.mounts import read_only, tmpfs

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # ~10 KB, more than one small write


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def objects(tmp_path: Path) -> LocalObjects:
    return LocalObjects(tmp_path / "data" / "objects")


def leftovers(folder: Path) -> list[str]:
    """Temp files anywhere below `folder` (what a failed write must not leave)."""
    return sorted(p.name for p in folder.rglob("*.part")) if folder.exists() else []


def other_filesystem(tmp_path: Path) -> Path:
    """A folder on another filesystem than tmp_path: /dev/shm when it is one, else a small tmpfs mount."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev:
        folder = shm / f"storytree-test-{os.getpid()}-{tmp_path.name}"
        folder.mkdir()
        return folder
    pytest.skip("no second filesystem (/dev/shm) to test across")


# -- in ---------------------------------------------------------------------------------------------------------
def test_add_file_stores_the_bytes_once_by_sha256_read_only_in_a_private_folder(objects: LocalObjects,
                                                                                 tmp_path: Path) -> None:
    src = tmp_path / "sheet.png"
    src.write_bytes(PNG)
    assert not objects.root.exists()  # created on first write, not before

    digest = objects.add_file(src)

    assert digest == sha(PNG)
    assert objects.path(digest) == objects.root / "sha256" / digest[:2] / digest[2:]
    assert objects.path(digest).read_bytes() == PNG
    assert stat.S_IMODE(objects.path(digest).stat().st_mode) == 0o444
    assert stat.S_IMODE(objects.root.stat().st_mode) == 0o700
    assert objects.has(digest) and objects.verify(digest)
    assert objects.list() == [(digest, len(PNG))]
    assert leftovers(objects.root) == []


def test_add_file_with_the_wrong_expected_hash_is_refused_and_stores_nothing(objects: LocalObjects,
                                                                             tmp_path: Path) -> None:
    src = tmp_path / "sheet.png"
    src.write_bytes(PNG)
    wrong = sha(b"something else")

    with pytest.raises(ObjectCorrupt) as caught:
        objects.add_file(src, expected_sha256=wrong)

    assert str(src) in str(caught.value) and wrong[:12] in str(caught.value)
    assert caught.value.actual_sha256 == sha(PNG)
    assert objects.list() == [] and leftovers(objects.root) == []
    assert objects.add_file(src, expected_sha256=sha(PNG)) == sha(PNG)


def test_adding_an_object_that_exists_leaves_it_alone(objects: LocalObjects, tmp_path: Path) -> None:
    digest = objects.add_bytes(PNG)
    inode = objects.path(digest).stat().st_ino
    src = tmp_path / "again.png"
    src.write_bytes(PNG)

    assert objects.add_file(src) == digest
    assert objects.add_bytes(PNG) == digest
    assert objects.path(digest).stat().st_ino == inode  # not rewritten
    assert objects.list() == [(digest, len(PNG))] and leftovers(objects.root) == []


@pytest.mark.parametrize("damage", ["same size", "truncated"])
def test_a_damaged_object_is_found_by_verify_and_replaced_by_the_next_add(objects: LocalObjects, tmp_path: Path,
                                                                          damage: str) -> None:
    digest = objects.add_bytes(PNG)
    stored = objects.path(digest)
    os.chmod(stored, 0o644)
    stored.write_bytes(b"X" * len(PNG) if damage == "same size" else PNG[:100])
    os.chmod(stored, 0o444)
    assert not objects.verify(digest)

    src = tmp_path / "genuine.png"
    src.write_bytes(PNG)
    assert objects.add_file(src) == digest

    assert objects.verify(digest) and stored.read_bytes() == PNG
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444


def test_a_missing_source_is_a_clear_input_error(objects: LocalObjects, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.png"):
        objects.add_file(tmp_path / "nope.png")


def test_a_full_disk_stores_nothing_and_says_so(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", size_kb=64) as small:
        objects = LocalObjects(small / "objects")
        src = tmp_path / "video.mp4"
        src.write_bytes(os.urandom(200_000))

        with pytest.raises(ObjectStoreFault) as caught:
            objects.add_file(src)

        assert isinstance(caught.value, EnvironmentFault) and caught.value.retry_safe
        assert "disk is full" in str(caught.value) and str(small / "objects") in str(caught.value)
        assert objects.list() == [] and leftovers(small) == []


def test_a_read_only_objects_folder_is_an_environment_fault(tmp_path: Path) -> None:
    objects = LocalObjects(tmp_path / "objects")
    objects.add_bytes(b"first")
    with read_only(objects.root):
        with pytest.raises(ObjectStoreFault, match="cannot store .* objects"):
            objects.add_bytes(PNG)
    assert [s for s, _ in objects] == [sha(b"first")]


# -- out --------------------------------------------------------------------------------------------------------
def test_materialize_writes_an_ordinary_file_that_an_in_place_edit_cannot_turn_into_the_object(
        objects: LocalObjects, tmp_path: Path) -> None:
    digest = objects.add_bytes(PNG)
    asset = tmp_path / "public" / "generated" / "sheet.png"  # folders created

    objects.materialize(digest, asset)

    assert asset.read_bytes() == PNG
    assert stat.S_IMODE(asset.stat().st_mode) == FILE_MODE  # 0666 - umask, not read-only
    assert asset.stat().st_ino != objects.path(digest).stat().st_ino
    with open(asset, "r+b") as handle:  # an editor that rewrites in place
        handle.write(b"retouched")
    assert objects.verify(digest) and objects.path(digest).read_bytes() == PNG
    assert leftovers(asset.parent) == []


def test_materialize_replaces_an_existing_asset_whole(objects: LocalObjects, tmp_path: Path) -> None:
    digest = objects.add_bytes(PNG)
    asset = tmp_path / "sheet.png"
    asset.write_bytes(b"old placeholder")
    objects.materialize(digest, asset)
    assert asset.read_bytes() == PNG


def test_materialize_of_a_damaged_object_raises_and_leaves_the_asset_as_it_was(objects: LocalObjects,
                                                                               tmp_path: Path) -> None:
    digest = objects.add_bytes(PNG)
    os.chmod(objects.path(digest), 0o644)
    objects.path(digest).write_bytes(PNG[:-1] + b"!")  # one byte off
    asset = tmp_path / "sheet.png"
    asset.write_bytes(b"previous asset")

    with pytest.raises(ObjectCorrupt, match=digest[:12]):
        objects.materialize(digest, asset)

    assert asset.read_bytes() == b"previous asset"  # never a partial or wrong file at dest
    assert leftovers(tmp_path) == []


def test_materialize_of_a_missing_object_names_it(objects: LocalObjects, tmp_path: Path) -> None:
    missing = sha(b"never stored")
    with pytest.raises(ObjectNotFound, match=missing[:12]) as caught:
        objects.materialize(missing, tmp_path / "x.png")
    assert caught.value.sha256 == missing and not (tmp_path / "x.png").exists()


def test_materialize_into_a_read_only_folder_is_an_environment_fault(objects: LocalObjects, tmp_path: Path) -> None:
    digest = objects.add_bytes(PNG)
    folder = tmp_path / "public"
    folder.mkdir()
    (folder / "sheet.png").write_bytes(b"kept")
    with read_only(folder):
        with pytest.raises(ObjectStoreFault, match="sheet.png"):
            objects.materialize(digest, folder / "sheet.png")
    assert (folder / "sheet.png").read_bytes() == b"kept"


def test_hardlink_opt_in_shares_the_read_only_inode_and_its_documented_risk(tmp_path: Path) -> None:
    objects = LocalObjects(tmp_path / "objects", link="hardlink")
    digest = objects.add_bytes(PNG)
    asset = tmp_path / "public" / "sheet.png"

    objects.materialize(digest, asset)

    assert asset.stat().st_ino == objects.path(digest).stat().st_ino
    assert stat.S_IMODE(asset.stat().st_mode) == 0o444
    if os.geteuid() == 0:  # root ignores the read-only bit: the risk the docstring names, caught by verify
        with open(asset, "r+b") as handle:
            handle.write(b"retouched")
        assert not objects.verify(digest)
        assert objects.add_bytes(PNG) == digest and objects.verify(digest)  # the genuine bytes repair it
        assert asset.read_bytes().startswith(b"retouched")  # ...and the edited asset is no longer its name


def test_copy_and_hardlink_work_across_filesystems(tmp_path: Path) -> None:
    elsewhere = other_filesystem(tmp_path)
    try:
        for link in ("copy", "hardlink"):
            objects = LocalObjects(tmp_path / f"objects-{link}", link=link)
            src = elsewhere / "in.png"
            src.write_bytes(PNG)
            digest = objects.add_file(src)  # the source on another filesystem
            asset = elsewhere / link / "sheet.png"
            objects.materialize(digest, asset)  # the asset on another filesystem: a copy
            assert asset.read_bytes() == PNG
            assert stat.S_IMODE(asset.stat().st_mode) == FILE_MODE
    finally:
        for path in sorted(elsewhere.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        elsewhere.rmdir()


# -- ids, listing, removal --------------------------------------------------------------------------------------
BAD_IDS = ["../../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "", "/" + "a" * 63, "a" * 62 + "/.",
           "a" * 63 + "\x00", None, 42]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_anything_but_a_lowercase_sha256_is_refused_before_it_becomes_a_path(objects: LocalObjects, tmp_path: Path,
                                                                             bad: object) -> None:
    calls = [lambda: objects.path(bad), lambda: objects.has(bad), lambda: objects.verify(bad),
             lambda: objects.remove(bad), lambda: objects.materialize(bad, tmp_path / "x"),
             *([lambda: objects.add_file(tmp_path / "x", expected_sha256=bad)] if bad is not None else [])]
    (tmp_path / "x").write_bytes(b"x")
    for call in calls:
        with pytest.raises(InvalidObjectId, match="64 lowercase hex"):
            call()
    assert isinstance(InvalidObjectId("x"), InputError)


def test_list_total_and_remove(objects: LocalObjects) -> None:
    blobs = [b"one", b"two two", PNG]
    digests = [objects.add_bytes(b) for b in blobs]
    (objects.path(digests[0]).parent / ".stray.part").write_bytes(b"temp of a crashed write")

    assert sorted(objects) == sorted((sha(b), len(b)) for b in blobs)
    assert objects.total_bytes() == sum(len(b) for b in blobs)
    assert objects.remove(digests[1]) is True and objects.remove(digests[1]) is False
    assert not objects.has(digests[1]) and sorted(s for s, _ in objects) == sorted([digests[0], digests[2]])


def test_an_empty_or_absent_store_lists_nothing(tmp_path: Path) -> None:
    objects = LocalObjects(tmp_path / "absent")
    assert objects.list() == [] and objects.total_bytes() == 0 and not objects.has(sha(b""))
    assert not (tmp_path / "absent").exists()


def test_an_unknown_link_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="copy"):
        LocalObjects(tmp_path, link="symlink")  # type: ignore[arg-type]


def test_on_a_filesystem_with_clones_materialize_is_a_reflink_and_still_independent(tmp_path: Path) -> None:
    from support.mounts import reflink_filesystem

    with reflink_filesystem(tmp_path / "xfs") as fs:
        objects = LocalObjects(fs / "objects")
        video = os.urandom(32 * 2**20)
        src = fs / "paid.mp4"
        src.write_bytes(video)
        os.sync()
        free_before_add = os.statvfs(fs).f_bfree * os.statvfs(fs).f_frsize
        digest = objects.add_file(src)  # cloned in, then hashed
        asset = fs / "public" / "shot.mp4"
        objects.materialize(digest, asset)  # cloned out
        os.sync()
        used = free_before_add - os.statvfs(fs).f_bfree * os.statvfs(fs).f_frsize

        assert used < 4 * 2**20, f"{used} bytes used for two 32 MB files: the clone path did not run"
        assert asset.read_bytes() == video and stat.S_IMODE(asset.stat().st_mode) == FILE_MODE
        with open(asset, "r+b") as handle:  # copy-on-write: the edit gets its own blocks
            handle.write(b"retouched")
        assert objects.verify(digest)
