"""`storytree restore STORY TASK WHICH`: WHICH is a version number or a sha256 prefix, and a prefix may be all digits."""

from __future__ import annotations

import pytest

from storytree_build.building.keeping import _choose
from storytree_build.core.errors import InputError
from storytree_build.store.build_state import Record, Version

TASK = "image:scenelet-1_1"


def version(n: int, sha256: str) -> Version:
    record = Record(story_id="s", task=TASK, output="s/x.png", signature="sig", inputs={}, output_sha256=sha256,
                    output_size=1, output_mtime_ns=1, provider="stub", model="m", prompt_sha256="p",
                    built_at="2026-12-03T00:00:00+00:00", published=True, version=n)
    return Version(story_id="s", task=TASK, version=n, output_sha256=sha256, record=record)


VERSIONS = [version(2, "22985113" + "a" * 56), version(1, "9e7f3d85" + "b" * 56)]


def test_a_sha256_prefix_of_digits_only_finds_its_version() -> None:
    assert _choose(VERSIONS, "22985113", TASK, "s").version == 2


def test_a_version_number_finds_its_version() -> None:
    assert _choose(VERSIONS, "1", TASK, "s").version == 1
    assert _choose(VERSIONS, "9e7f", TASK, "s").version == 1


def test_a_number_that_is_one_version_and_the_prefix_of_another_is_refused() -> None:
    versions = [version(2, "1" + "c" * 63), version(1111, "2" * 64), version(3, "1111" + "d" * 60)]
    with pytest.raises(InputError, match="'1111' matches more than one version"):
        _choose(versions, "1111", TASK, "s")


def test_nothing_matching_lists_the_versions() -> None:
    with pytest.raises(InputError, match=r"'abcd' is no earlier version \(earlier versions: 2 \(22985113aaaa\), 1"):
        _choose(VERSIONS, "abcd", TASK, "s")
