"""Supabase-only behaviour: configuration errors, secrecy of the service key, moving stories between stores,
the shipped migrations. The contract shared with SQLite is in test_store_contract.py.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from pathlib import Path

import pytest

from support import pg_services
from support.project import SAMPLE_ID, story_db
from support.pg_services import free_port, mint_jwt
from storytree_build.core.errors import ConfigError, InputError, StoreError
from storytree_build.settings import load_settings
from storytree_build.store import SqliteStoryStore, open_store
from storytree_build.store import supabase_stories as supabase_module
from storytree_build.store.supabase_stories import SupabaseStoryStore
from storytree_build.data.transfer import export_story, import_file

FAKE_KEY = mint_jwt("service_role", secret="some-other-projects-jwt-secret-0123456789abcdef")


def assert_secret_absent(secret: str, caplog: pytest.LogCaptureFixture, *errors: BaseException) -> None:
    for error in errors:
        assert secret not in "".join(traceback.format_exception(error))  # message and chained causes
    assert secret not in caplog.text


def settings_for(project: Path, **env: str):
    return load_settings(root=project, env={"STORYTREE_STORE": "supabase", **env})


# -- configuration (no server needed) --------------------------------------------------------------
def test_missing_url_and_key_are_named(project):
    with pytest.raises(ConfigError) as err:
        open_store(settings_for(project))
    assert "SUPABASE_URL is not set" in str(err.value)
    assert "SUPABASE_SERVICE_ROLE_KEY is not set" in str(err.value)


def test_missing_key_is_named(project, caplog):
    with pytest.raises(ConfigError, match="SUPABASE_SERVICE_ROLE_KEY is not set") as err:
        open_store(settings_for(project, SUPABASE_URL="https://abc.supabase.co"))
    assert "SUPABASE_URL is not set" not in str(err.value)


@pytest.mark.parametrize("url, expected", [
    ("", "SUPABASE_URL is not set"),
    ("abc.supabase.co", "is not an http"),
    ("https://abc.supabase.co/rest/v1", "ends with /rest/v1"),
])
def test_bad_urls_are_named_and_the_key_never_shows(project, caplog, url, expected):
    caplog.set_level(logging.DEBUG)
    env = {"SUPABASE_SERVICE_ROLE_KEY": FAKE_KEY}
    if url:
        env["SUPABASE_URL"] = url
    with pytest.raises(ConfigError, match=expected) as err:
        open_store(settings_for(project, **env))
    assert_secret_absent(FAKE_KEY, caplog, err.value)


def test_open_store_selects_supabase_without_touching_the_network(project):
    store = open_store(settings_for(project, SUPABASE_URL=f"http://127.0.0.1:{free_port()}",
                                    SUPABASE_SERVICE_ROLE_KEY=FAKE_KEY))
    try:
        assert isinstance(store, SupabaseStoryStore)
        assert FAKE_KEY not in repr(store)
    finally:
        store.close()


def test_unreachable_server_names_supabase_url(project, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}"
    store = SupabaseStoryStore.from_settings(settings_for(project, SUPABASE_URL=url, SUPABASE_SERVICE_ROLE_KEY=FAKE_KEY),
                                             retry=False)
    try:
        with pytest.raises(StoreError, match="cannot reach Supabase at SUPABASE_URL") as read:
            store.list_story_ids()
        with pytest.raises(StoreError, match=f"SUPABASE_URL {url}") as write:
            store.set_document_path(SAMPLE_ID, "visual_design_document", ["a"], "b")
    finally:
        store.close()
    assert_secret_absent(FAKE_KEY, caplog, read.value, write.value)


def test_services_missing_skip_loudly_or_fail_when_required(monkeypatch):
    monkeypatch.delenv(pg_services.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="SUPABASE STORE TESTS SKIPPED: no binary"):
        pg_services.services_unavailable("no binary")
    pg_services._skipped_reasons.remove("no binary")
    monkeypatch.setenv(pg_services.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_SUPABASE_TESTS=1"):
        pg_services.services_unavailable("no binary")


CREDENTIALS = "robot:url-pw-7"  # user-info inside SUPABASE_URL: never shown anywhere


def with_credentials(url: str) -> str:
    return url.replace("://", f"://{CREDENTIALS}@", 1)


def assert_credentials_absent(caplog: pytest.LogCaptureFixture, *errors: BaseException, texts: tuple[str, ...] = ()):
    for error in errors:
        assert "url-pw-7" not in str(error)
    for text in (caplog.text, *texts):
        assert "url-pw-7" not in text


@pytest.mark.parametrize("url, expected", [
    ("ftp://robot:url-pw-7@abc.supabase.co", "'ftp://***@abc.supabase.co' is not an http"),
    ("https://robot:url-pw-7@abc.supabase.co/rest/v1", "'https://***@abc.supabase.co/rest/v1' ends with /rest/v1"),
])
def test_credentials_in_a_bad_supabase_url_never_show(project, caplog, url, expected):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError, match=re.escape(expected)) as err:
        open_store(settings_for(project, SUPABASE_URL=url, SUPABASE_SERVICE_ROLE_KEY=FAKE_KEY))
    assert_credentials_absent(caplog, err.value)


def test_credentials_in_an_unreachable_supabase_url_never_show(project, caplog):
    caplog.set_level(logging.DEBUG)
    url = with_credentials(f"http://127.0.0.1:{free_port()}")
    store = SupabaseStoryStore.from_settings(settings_for(project, SUPABASE_URL=url, SUPABASE_SERVICE_ROLE_KEY=FAKE_KEY),
                                             retry=False)
    try:
        with pytest.raises(StoreError, match=r"cannot reach Supabase at SUPABASE_URL http://\*\*\*@127\.0\.0\.1") as read:
            store.list_story_ids()
        with pytest.raises(StoreError) as write:
            store.set_document_path(SAMPLE_ID, "visual_design_document", ["a"], "b")
        assert_credentials_absent(caplog, read.value, write.value, texts=(repr(store),))
    finally:
        store.close()


# -- configuration errors against the real PostgREST -----------------------------------------------
@pytest.mark.parametrize("which, expected", [
    ("url", "permission denied"),  # user-info becomes Basic auth, which PostgREST reads as anon
    ("postgrest_url", "answered HTTP 404"),  # no Supabase API behind it: the message names SUPABASE_URL
])
def test_credentials_in_supabase_url_never_show_in_server_errors(project, supabase_stack, caplog, which, expected):
    caplog.set_level(logging.DEBUG)
    url = with_credentials(getattr(supabase_stack, which))
    store = SupabaseStoryStore.from_settings(settings_for(
        project, SUPABASE_URL=url, SUPABASE_SERVICE_ROLE_KEY=supabase_stack.service_key), retry=False)
    try:
        with pytest.raises(ConfigError, match=expected) as err:
            store.list_story_ids()
        assert_credentials_absent(caplog, err.value, texts=(repr(store),))
        assert "HTTP Request: GET http://***@127.0.0.1" in caplog.text  # httpx's own request line, scrubbed
    finally:
        store.close()


@pytest.mark.parametrize("key, expected", [
    (FAKE_KEY, "rejected SUPABASE_SERVICE_ROLE_KEY"),            # a key of another project -> 401
    ("definitely-not-a-jwt-but-secret-42", "rejected SUPABASE_SERVICE_ROLE_KEY"),
    (mint_jwt("anon"), "must be the service_role key, not the anon"),  # the anon key -> permission denied
])
def test_wrong_key_is_a_config_error_that_never_shows_the_key(project, supabase_stack, caplog, key, expected):
    caplog.set_level(logging.DEBUG)
    store = SupabaseStoryStore.from_settings(
        settings_for(project, SUPABASE_URL=supabase_stack.url, SUPABASE_SERVICE_ROLE_KEY=key), retry=False)
    try:
        errors = []
        for call in (store.list_story_ids,
                     lambda: store.load_story(SAMPLE_ID),
                     lambda: store.set_document_path(SAMPLE_ID, "visual_design_document", ["a"], "b"),
                     lambda: store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "x.png")):
            with pytest.raises(ConfigError, match=expected) as err:
                call()
            errors.append(err.value)
    finally:
        store.close()
    assert "HTTP 401" in str(errors[0]) or "42501" in str(errors[0])
    assert_secret_absent(key, caplog, *errors)


def test_missing_tables_and_function_name_the_migrations(project, bare_supabase_stack, caplog, sample_export):
    caplog.set_level(logging.DEBUG)
    store = SupabaseStoryStore.from_settings(load_settings(root=project, env=bare_supabase_stack.env()), retry=False)
    try:
        with pytest.raises(ConfigError, match=r"story tables are missing.*supabase/migrations") as listing:
            store.list_story_ids()
        with pytest.raises(ConfigError, match=r"import_story_rows is missing.*000013_import_story_rows"):
            store.import_rows(sample_export)
        with pytest.raises(ConfigError, match=r"public\.set_story_json_path is missing.*000012") as rpc:
            store.set_document_path(SAMPLE_ID, "visual_design_document", ["a"], "b")
        with pytest.raises(ConfigError, match="supabase/migrations"):
            store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "x.png")
        from storytree_build.store.supabase_records import SupabaseBuildState

        records = SupabaseBuildState(store)
        with pytest.raises(ConfigError, match="000014_storytree_records"):
            records.records(SAMPLE_ID).all()
        with pytest.raises(ConfigError, match="000014_storytree_records"):
            records.claims(SAMPLE_ID).take("image:x_1", "me", 60)
    finally:
        store.close()
    assert_secret_absent(bare_supabase_stack.service_key, caplog, listing.value, rpc.value)


def test_url_without_a_supabase_api_behind_it(project, supabase_stack, caplog):
    """A bare PostgREST (no /rest/v1) stands in for a wrong SUPABASE_URL: HTTP 404 names SUPABASE_URL."""
    caplog.set_level(logging.DEBUG)
    store = SupabaseStoryStore.from_settings(load_settings(root=project, env=supabase_stack.env(
        SUPABASE_URL=supabase_stack.postgrest_url)), retry=False)
    try:
        with pytest.raises(ConfigError, match=r"answered HTTP 404.*Set SUPABASE_URL to the project URL") as err:
            store.list_story_ids()
    finally:
        store.close()
    assert_secret_absent(supabase_stack.service_key, caplog, err.value)


# -- working store ---------------------------------------------------------------------------------
def test_settings_select_the_supabase_store_and_logs_keep_the_key_out(supabase_settings, supabase_stack,
                                                                      sample_export, caplog):
    caplog.set_level(logging.DEBUG)
    assert supabase_settings.store == "supabase"
    supabase_stack.reset()
    store = open_store(supabase_settings)
    try:
        assert isinstance(store, SupabaseStoryStore)
        store.import_rows(json.loads(json.dumps(sample_export)))
        store.set_document_path(SAMPLE_ID, "visual_design_document", ["character_designs", 0, "x"], "y.png")
        store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "k.png")
        text = export_story(store, SAMPLE_ID)
    finally:
        store.close()
    assert "k.png" in text and "y.png" in text
    assert "HTTP Request" in caplog.text  # httpx did log the requests...
    assert_secret_absent(supabase_stack.service_key, caplog)  # ...without the key
    assert supabase_stack.service_key not in text


def test_reads_page_through_max_rows(supabase_store, sample_export, monkeypatch):
    supabase_store.import_rows(json.loads(json.dumps(sample_export)))
    whole = supabase_store.load_story(SAMPLE_ID)
    monkeypatch.setattr(supabase_module, "PAGE_SIZE", 2)
    paged = supabase_store.load_story(SAMPLE_ID)
    assert paged == whole
    assert len(paged.shots) == len(sample_export["shots"]) > 2


def test_invalid_story_ids_are_unknown_stories(supabase_store):
    with pytest.raises(InputError, match="known stories: none"):
        supabase_store.load_story("scenelet-1")
    with pytest.raises(StoreError, match="does not exist"):
        supabase_store.set_document_path("nope", "visual_design_document", ["a"], 1)


# -- moving a story between the stores -------------------------------------------------------------
def test_export_from_supabase_imports_into_sqlite_identically(supabase_store, store, sample_export, tmp_path):
    sample_file = tmp_path / "sample.json"
    sample_file.write_text(json.dumps(sample_export))
    import_file(sample_file, supabase_store)
    supabase_store.set_shot_path(SAMPLE_ID, "scenelet-1", 2, "audio_file_path", "N/A")

    from_supabase = tmp_path / "from-supabase.json"
    from_supabase.write_text(export_story(supabase_store, SAMPLE_ID))
    import_file(from_supabase, store)
    assert export_story(store, SAMPLE_ID) == from_supabase.read_text()
    assert store.load_story(SAMPLE_ID) == supabase_store.load_story(SAMPLE_ID)


def test_export_from_sqlite_imports_into_supabase_identically(supabase_store, tmp_path, sample_export, project):
    sqlite_store = SqliteStoryStore(project / ".storytree" / "other.sqlite")
    try:
        sample_file = tmp_path / "sample.json"
        sample_file.write_text(json.dumps(sample_export))
        import_file(sample_file, sqlite_store)
        sqlite_store.set_document_path(SAMPLE_ID, "visual_design_document", ["character_designs", 0, "p"], "a.png")

        from_sqlite = tmp_path / "from-sqlite.json"
        from_sqlite.write_text(export_story(sqlite_store, SAMPLE_ID))
        import_file(from_sqlite, supabase_store)
        assert json.loads(export_story(supabase_store, SAMPLE_ID)) == json.loads(from_sqlite.read_text())
        assert supabase_store.load_story(SAMPLE_ID) == sqlite_store.load_story(SAMPLE_ID)
    finally:
        sqlite_store.close()


# -- an import never moves another story's rows ----------------------------------------------------
def test_a_concurrent_import_cannot_slip_a_row_of_another_story_past_the_check(pg_cluster, supabase_store,
                                                                               sample_export):
    """A second transaction stores one of the copy's scenelet ids under another story after import_story_rows
    checked: the upsert waits on that row, then its guard refuses the whole import instead of moving the row."""
    import copy
    import subprocess
    import threading
    import time

    from storytree_build.data.transfer import validate_export

    copy_id, other_id = "6f2a1d3b-8c4e-4d5f-9a70-1e3f5a7c9e21", "1c3e5a7b-9d2f-4a6c-8e1b-3d5f7a9c1e32"
    story_copy = copy.deepcopy(sample_export)
    story_copy["stories"][0].update(id=copy_id, display_name="Wren, the copy")
    for row in story_copy["scenelets"]:
        row.update(story_id=copy_id, id="4" + row["id"][1:], parent_id=row["parent_id"] and "4" + row["parent_id"][1:])
    for row in story_copy["shots"]:
        row.update(story_id=copy_id, id=None, scenelet_ref="4" + row["scenelet_ref"][1:])
    clean = validate_export(story_copy, supabase_store, "copy")  # nothing owns these ids yet
    contested = clean["scenelets"][0]["id"]

    def count(where: str) -> int:
        return int(pg_cluster.psql(f"select count(*) from pg_stat_activity where {where}").strip())

    holder = subprocess.Popen([str(pg_cluster.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                               pg_cluster.dsn()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    outcome: list[BaseException | None] = []
    importer = threading.Thread(target=lambda: outcome.append(_raised(supabase_store.import_rows, clean)))
    try:
        assert holder.stdin is not None
        holder.stdin.write(
            "begin;\n"
            f"insert into public.stories (id, display_name, initial_prompt) values ('{other_id}', 'Concurrent', 'p');\n"
            "insert into public.scenelets (id, story_id, content, created_at) "
            f"values ('{contested}', '{other_id}', '{{}}', now());\n")
        holder.stdin.flush()
        for _ in range(500):  # the holder has written its row and keeps its transaction open
            if count("state = 'idle in transaction'"):
                break
            time.sleep(0.02)
        importer.start()
        for _ in range(500):  # the import reached the contested row and waits for the holder
            if count("wait_event_type = 'Lock'"):
                break
            time.sleep(0.02)
        assert count("wait_event_type = 'Lock'") == 1
        holder.stdin.write("commit;\n")
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
        importer.join(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    error = outcome[0]
    assert isinstance(error, InputError), error
    assert f"scenelets[0] (id {contested!r}): belongs to story {other_id} ('Concurrent')" in str(error)
    assert "--new-ids" in str(error)
    assert supabase_store.list_story_ids() == [other_id]  # the copy rolled back whole; the row stayed its owner's
    assert pg_cluster.psql(f"select story_id from public.scenelets where id = '{contested}'").strip() == other_id


def test_upper_case_uuids_are_the_same_rows(supabase_store, sample_export):
    """Postgres compares uuids by value and answers them in lower case: the same story in upper case is a re-import,
    and a copy whose row ids are the original's in upper case is refused, naming the ids as the file spells them."""
    import copy

    from storytree_build.data.transfer import validate_export

    def upper(export: dict, story_id: str) -> dict:
        export = copy.deepcopy(export)
        export["stories"][0]["id"] = story_id
        for row in export["scenelets"] + export["shots"]:
            row.update(id=row["id"].upper(), story_id=story_id)
            for column in ("parent_id", "scenelet_ref"):
                if row.get(column):
                    row[column] = row[column].upper()
        return export

    supabase_store.import_rows(validate_export(copy.deepcopy(sample_export), supabase_store, "sample"))
    supabase_store.import_rows(validate_export(upper(sample_export, SAMPLE_ID.upper()), supabase_store, "again"))
    assert supabase_store.list_story_ids() == [SAMPLE_ID]
    assert len(supabase_store.load_story(SAMPLE_ID).shots) == len(sample_export["shots"])

    copy_id = "6f2a1d3b-8c4e-4d5f-9a70-1e3f5a7c9e21"
    same_ids = upper(sample_export, copy_id)
    with pytest.raises(InputError, match=r"scenelets\[0\] \(id '3A9B7C10-1D2E-4F30-8A41-5B6C7D8E9F01'\): belongs to story "
                                         + SAMPLE_ID):
        validate_export(copy.deepcopy(same_ids), supabase_store, "copy")
    with pytest.raises(InputError, match=r"shots\[0\] \('scenelet-1' #1, id 'B7E4A2D0-6C1F-4E3A-9B58-1C2D3E4F5001'\): "
                                         r"belongs to story " + SAMPLE_ID):
        supabase_store.import_rows(same_ids)  # the database's own refusal, worded the same
    assert supabase_store.list_story_ids() == [SAMPLE_ID]


def _raised(call, *args) -> BaseException | None:  # noqa: ANN001
    try:
        call(*args)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return exc
    return None


# -- the shipped migrations ------------------------------------------------------------------------
def test_migrations_are_idempotent_and_give_the_original_final_shape(pg_cluster, supabase_stack):
    pg_cluster.apply_migrations()  # a second run changes nothing and does not fail
    columns = pg_cluster.psql(
        "select table_name || '.' || column_name from information_schema.columns "
        "where table_schema = 'public' and table_name not like 'storytree%' order by 1").split()
    assert set(columns) == {
        *(f"stories.{c}" for c in ("id", "display_name", "display_name_upper", "initial_prompt", "story_constitution",
                                   "visual_design_document", "audio_design_document", "visual_reference_package",
                                   "created_at", "updated_at")),
        *(f"scenelets.{c}" for c in ("id", "story_id", "parent_id", "choice_label_from_parent", "choice_prompt",
                                     "content", "is_branch_point", "is_terminal_node", "branch_audio_file_path",
                                     "created_at")),
        *(f"shots.{c}" for c in ("id", "story_id", "scenelet_ref", "scenelet_id", "scenelet_sequence", "shot_index",
                                 "storyboard_payload", "key_frame_image_path", "audio_file_path", "video_file_path",
                                 "created_at", "updated_at")),
    }
    facts = set(pg_cluster.psql("""
        select tgname::text from pg_trigger where not tgisinternal
        union all
        select 'unique ' || pg_get_constraintdef(oid) from pg_constraint
         where conrelid = 'public.shots'::regclass and contype = 'u'
        union all
        select 'anon may execute: ' || has_function_privilege('anon',
               'public.set_story_json_path(uuid,text,text[],jsonb)', 'execute')
        union all
        select 'service_role may execute: ' || has_function_privilege('service_role',
               'public.set_story_json_path(uuid,text,text[],jsonb)', 'execute')
        union all
        select 'service_role bypasses RLS: ' || rolbypassrls from pg_roles where rolname = 'service_role'
        union all
        select 'anon may import or look up owners: ' || (
               has_function_privilege('anon', 'public.import_story_rows(jsonb,jsonb,jsonb)', 'execute')
               or has_function_privilege('anon', 'public.storytree_foreign_rows(jsonb,jsonb)', 'execute'))
        union all
        select 'service_role may import: ' || (
               has_function_privilege('service_role', 'public.import_story_rows(jsonb,jsonb,jsonb)', 'execute')
               and has_function_privilege('service_role', 'public.storytree_foreign_rows(jsonb,jsonb)', 'execute'))
        """).splitlines())
    assert facts == {
        "set_current_timestamp_updated_at", "set_current_timestamp_updated_at_shots",
        "unique UNIQUE (story_id, scenelet_id, shot_index)",
        "anon may execute: false", "service_role may execute: true", "service_role bypasses RLS: true",
        "anon may import or look up owners: false", "service_role may import: true",
    }


# -- the build through the Supabase store ----------------------------------------------------------
def test_stub_build_through_supabase_writes_paths_back_and_a_no_op_build_sends_nothing(
        project, supabase_stack, supabase_store, sample_export, monkeypatch):
    from support.project import doit, project_env, storytree, write_export

    for name, value in supabase_stack.env().items():
        monkeypatch.setenv(name, value)
    export = write_export(project / "sample.json", sample_export)
    assert storytree(project, "import", str(export), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    assert not (story_db(project)).exists()  # everything went to Supabase

    env = project_env(project, **supabase_stack.env())
    built = doit(project, f"story:{SAMPLE_ID}", "provider=stub", env=env)
    assert built.returncode == 0, built.stderr
    assert supabase_stack.service_key not in built.stdout + built.stderr

    snapshot = supabase_store.load_story(SAMPLE_ID)
    shot = next(s for s in snapshot.shots if (s["scenelet_id"], s["shot_index"]) == ("scenelet-2", 1))
    assert shot["key_frame_image_path"] == f"{SAMPLE_ID}/shots/scenelet-2/shot-1_key_frame.png"
    assert shot["video_file_path"] == f"{SAMPLE_ID}/shots/scenelet-2/shot-1.mp4"
    assert all(s["key_frame_image_path"] and s["video_file_path"] for s in snapshot.shots)
    vdd = snapshot.story["visual_design_document"]
    assert vdd["character_designs"][0]["character_model_sheet_image_path"].endswith("character-model-sheet-1.png")
    vrp = snapshot.story["visual_reference_package"]
    assert all(p["image_path"] for s in vrp["character_model_sheets"] for p in s["reference_plates"])

    before = len(supabase_stack.proxy.log)
    again = doit(project, f"story:{SAMPLE_ID}", "provider=stub", env=env)
    assert again.returncode == 0, again.stderr
    # A no-op build only reads the story's records and reviews from the store (they live with the story now) and
    # asks the database for the story's fingerprints (the review page shows story text; the manifest must still
    # match the story, paths just written back aside): no writes, and never the story itself.
    calls = supabase_stack.proxy.log[before:]
    assert calls and all((method == "GET" and path.startswith(("/rest/v1/storytree_records?",
                                                                "/rest/v1/storytree_operations?",
                                                                "/rest/v1/storytree_reviews?")))
                         or (method, path) in (("POST", "/rest/v1/rpc/storytree_story_fingerprint"),
                                               ("POST", "/rest/v1/rpc/storytree_manifest_fingerprint"))
                         for method, path in calls), calls
    assert [path for _, path in calls].count("/rest/v1/rpc/storytree_manifest_fingerprint") == 1
