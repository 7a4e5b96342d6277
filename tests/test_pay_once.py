"""Pay once across clones and histories, end to end on the embedded store: records live with the story (deleting
the state folder pays nothing; an old records file is imported once), stories built by the original system are
adopted, a provenance that no longer matches is still caught, and download-only mode sends nothing else."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from storytree_build.store import SqliteStoryStore
from support.project import (ASSETS, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env, records_of,
                             run_doit, story_db, write_export)

STORY = f"story:{SAMPLE_ID}"
OLD_SCHEMA = """
create table records (story_id text not null, task text not null, output text not null, signature text not null,
  inputs text not null, output_sha256 text not null, output_size integer not null, output_mtime_ns integer not null,
  provider text not null, model text not null, prompt_sha256 text not null, built_at text not null,
  published integer not null default 0, identity text not null default '', primary key (story_id, task));
create table operations (story_id text not null, task text not null, signature text not null, provider text not null,
  model text not null, state text not null, operation text, submitted_at text not null, download_uri text,
  error text, primary key (story_id, task));
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = import_story(new_project(tmp_path_factory.mktemp("payonce") / "project"))
    assert doit(root, STORY, "provider=stub").returncode == 0
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(built, copy)
    return copy


def calls_env(root: Path, log: Path) -> dict[str, str]:
    return project_env(root, STORYTREE_STUB_CALL_LOG=str(log))


def forget_records(root: Path) -> None:
    with sqlite3.connect(story_db(root)) as conn:
        conn.execute("delete from storytree_records")


def test_deleting_the_state_folder_pays_nothing(project: Path, tmp_path: Path) -> None:
    shutil.rmtree(project / ".storytree")
    check = doit(project, "dryrun", "--check", STORY, "provider=stub")
    assert check.returncode == 0 and "0 would run, 36 up to date" in check.stdout, check.stdout + check.stderr
    log = tmp_path / "calls.log"
    again = doit(project, STORY, "provider=stub", env=calls_env(project, log))
    assert again.returncode == 0 and not log.exists()


def test_records_of_an_earlier_version_are_imported_once(project: Path, tmp_path: Path) -> None:
    old = project / ".storytree" / "records.sqlite"
    with sqlite3.connect(story_db(project)) as conn, sqlite3.connect(old) as legacy:
        legacy.executescript(OLD_SCHEMA)
        columns = ("story_id, task, output, signature, inputs, output_sha256, output_size, output_mtime_ns, provider, "
                   "model, prompt_sha256, built_at, published, identity")
        legacy.executemany(f"insert into records ({columns}) values ({', '.join('?' * 14)})",
                           conn.execute(f"select {columns} from storytree_records").fetchall())
        conn.execute("delete from storytree_records")
    log = tmp_path / "calls.log"
    first = doit(project, STORY, "provider=stub", env=calls_env(project, log))
    assert first.returncode == 0, first.stdout + first.stderr
    assert not log.exists() and "0 built" in first.stdout
    assert first.stderr.count("imported 36 records and 0 video operations") == 1
    assert not old.exists() and old.with_name("records.sqlite.imported").exists()
    assert len(records_of(project)) == 36
    second = doit(project, STORY, "provider=stub")
    assert "imported" not in second.stderr


def original_system_layout(root: Path) -> None:
    """What the original TypeScript system leaves: files at the target paths (no storytree provenance) and their
    paths in the story database, no records."""
    manifest = manifest_of(root)
    forget_records(root)
    for target in manifest.targets:
        path = root / ASSETS / target.output
        if path.suffix == ".png":
            buffer = io.BytesIO()
            Image.new("RGB", (32, 18), (200, 100, 50)).save(buffer, format="PNG")
            path.write_bytes(buffer.getvalue())
        else:
            path.write_bytes(path.read_bytes())  # the stub MP4 carries no provenance anyway


def test_a_story_built_by_the_original_system_is_adopted_not_paid_for(project: Path, tmp_path: Path) -> None:
    original_system_layout(project)
    plan = doit(project, "dryrun", STORY, "provider=stub")
    assert plan.returncode == 0
    assert plan.stdout.count("[an existing file the story database points at, without a record") == 36, plan.stdout
    assert "estimated total: 0.00" in plan.stdout
    log = tmp_path / "calls.log"
    result = doit(project, STORY, "provider=stub", env=calls_env(project, log))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not log.exists() and "36 adopted" in result.stdout
    recs = records_of(project)
    assert len(recs) == 36 and {r.origin for r in recs.values()} == {"adopted"} and all(r.published for r in recs.values())
    again = doit(project, "dryrun", "--check", STORY, "provider=stub")
    assert again.returncode == 0, again.stdout


def test_adoption_can_be_turned_off_and_needs_the_database_to_point_at_the_file(project: Path) -> None:
    original_system_layout(project)
    with sqlite3.connect(story_db(project)) as conn:
        conn.execute("update shots set key_frame_image_path = null where scenelet_id = 'scenelet-2'")
    plan = doit(project, "dryrun", "--json", STORY, "provider=stub")
    import json

    reasons = {t["task"]: t["reason"] for t in json.loads(plan.stdout)["targets"] if t["action"] != "skip"}
    assert reasons["image:scenelet-2_1"] == "no record (an existing file would be replaced)"
    assert reasons["image:scenelet-1_1"].startswith("an existing file the story database points at")
    (project / "storytree.toml").write_text("[build]\nadopt_existing = false\n")
    plan = doit(project, "dryrun", "--json", STORY, "provider=stub")
    reasons = {t["task"]: t["reason"] for t in json.loads(plan.stdout)["targets"] if t["action"] == "run"}
    assert reasons["image:scenelet-1_1"] == "no record (an existing file would be replaced)"


def test_a_provenance_from_an_older_prompt_is_still_out_of_date(project: Path, sample_export: dict,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from support.project import storytree

    forget_records(project)  # the files keep their storytree provenance chunks
    shot = next(s for s in sample_export["shots"] if (s["scenelet_id"], s["shot_index"]) == ("scenelet-3", 2))
    shot["storyboard_payload"]["cameraDynamics"] += " The camera drifts slowly left."
    write_export(project / "edited.json", sample_export)
    assert storytree(project, "import", str(project / "edited.json"), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    import json

    plan = json.loads(doit(project, "dryrun", "--json", STORY, "provider=stub").stdout)
    actions = {t["task"]: (t["action"], t["reason"]) for t in plan["targets"]}
    assert actions["image:scenelet-3_2"] == ("run", "prompt changed")
    assert actions["image:scenelet-1_1"][0] == "adopt"


def test_download_only_sends_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A video fetched from a link pays for nothing else; and building its references afterwards — the images it
    was never made from as far as the record knows — does not make it stale: it is never submitted again."""
    import json

    from support.fakes.gemini_server import FakeGemini
    from test_gemini_images import KEY, write_config

    root = new_project(tmp_path / "project")
    write_config(root)
    import_story(root)
    video = manifest_of(root).by_task()["video:scenelet-1_1"]
    with FakeGemini() as fake:
        for name, value in project_env(root, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(root)
        link = fake.video.add_file()
        before = len(fake.requests)
        run = run_doit(root, video.task, f"--download-link={link}")
        assert run.code == 0, run.output
        calls = fake.requests[before:]
        assert [(c.method, c.path.split("/files/")[0]) for c in calls] == [("GET", "/v1beta")], calls
        assert fake.image_calls() == [] and fake.video.submit_calls == []
        files = [p for p in (root / ASSETS).rglob("*") if p.is_file()]
        assert [p.name for p in files] == ["shot-1.mp4"]
        rec = records_of(root)[video.task]
        assert rec.origin == "downloaded" and rec.detail == "127.0.0.1" and KEY not in str(rec)
        assert [digest for _, digest in rec.inputs["references"]] == [None] * len(video.references)

        # Now build every reference of the video (paid images, from the fake).
        references = [r.task for r in video.references]
        built = run_doit(root, *references)
        assert built.code == 0, built.output
        assert all((root / ASSETS / r.path).is_file() for r in video.references)
        assert len(fake.image_calls()) >= len(references) and fake.video.submit_calls == []

        # The downloaded video is up to date (not waiting, not to be run), and building it pays nothing.
        plan = run_doit(root, "dryrun", "--json", video.task)
        assert plan.code == 0, plan.output
        items = {t["task"]: t for t in json.loads(plan.out)["targets"]}
        assert (items[video.task]["action"], items[video.task]["reason"]) == ("skip", "up to date"), items
        again = run_doit(root, video.task)
        assert again.code == 0, again.output
        assert fake.video.submit_calls == []
        assert records_of(root)[video.task] == rec


def test_the_review_page_marks_adopted_assets(project: Path) -> None:
    original_system_layout(project)
    assert doit(project, STORY, "provider=stub").returncode == 0
    html = (project / f"apps/story-tree-ui/public/stories/{SAMPLE_ID}/index.html").read_text()
    assert html.count('<span class="badge origin" title="an existing file, recorded without generating it">adopted</span>') == 36
