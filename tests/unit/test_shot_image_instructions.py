"""The key-frame system instruction keeps the rules the original system's instructions had (issue 13): they were
lost once when the file was shortened, and nothing else would notice if they were lost again."""

from __future__ import annotations

import re

from support.project import REPO

TEXT = (REPO / "system_prompts" / "create_shot_images.md").read_text(encoding="utf-8")


def section(title: str) -> list[str]:
    """The bullets or numbered steps under one `Title:` line, each on one line (wrapped lines joined)."""
    match = re.search(rf"^{re.escape(title)}:\n((?:.+\n?)+)", TEXT, re.MULTILINE)
    assert match, f"no {title!r} section in create_shot_images.md"
    items: list[str] = []
    for line in match.group(1).splitlines():
        if re.match(r"(- |\d\. )", line):
            items.append(line)
        else:  # a wrapped continuation line
            items[-1] += " " + line.strip()
    return items


def item(title: str, start: str) -> str:
    found = [i for i in section(title) if i.startswith(start)]
    assert len(found) == 1, f"{title}: no single item starting {start!r}"
    return found[0]


def test_the_model_sheet_wins_on_appearance_and_the_text_on_everything_else() -> None:
    assert "the model sheet wins" in item("When the text and a reference disagree", "- How a character looks")
    rest = item("When the text and a reference disagree", "- Everything else")
    assert "the text decides" in rest
    for decided_by_text in ("pose", "action", "expression", "framing", "camera angle"):
        assert decided_by_text in rest


def test_the_order_of_work_is_references_then_description_then_composition() -> None:
    steps = section("Order of work")
    assert [s[:3] for s in steps] == ["1. ", "2. ", "3. "]
    assert steps[0].startswith("1. Study the reference images first")
    assert steps[1].startswith("2. Then read the scene description")
    assert steps[2].startswith("3. Only then compose the frame")


def test_physical_coherence() -> None:
    assert "relative to each other and to" in item("Physical coherence", "- Scale:")
    assert "feet rest on the ground" in item("Physical coherence", "- Contact:")
    light = item("Physical coherence", "- Light:")
    assert "one key-light direction" in light and "shadows that fall the way the environment's lighting" in light


def test_scene_text_only_on_request_and_overlays_never() -> None:
    allowed = item("Text in the image", "- Lettering that belongs to the scene")
    assert "(a sign, a screen, a book cover) only where the scene description asks for it" in allowed
    banned = item("Text in the image", "- Never add")
    for overlay in ("captions", "subtitles", "speech bubbles", "labels", "signatures", "logos", "watermarks"):
        assert overlay in banned


def test_it_stays_compact() -> None:
    assert len(TEXT.encode("utf-8")) < 3_500  # every key-frame request carries it
    assert TEXT.startswith("You are the storyboard artist") and TEXT.rstrip().endswith("Output only the image.")
