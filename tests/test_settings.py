"""Settings: defaults < storytree.toml < environment < doit variables < overrides; every environment variable lands
on its setting; flags take the usual words; a bad value is one line naming where it came from and the accepted form,
never a traceback and never a secret."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from storytree_build.cli import main
from storytree_build.core.errors import ConfigError
from storytree_build.settings import RUN_VARIABLES, Settings, load_settings, state_dir
from support.project import doit, new_project, project_env

SECRET = "sk-live-never-show-me-0123456789"


def settings_of(root: Path, toml: str | None = None, env: dict[str, str] | None = None,
                variables: Mapping[str, str | None] | None = None, **overrides: Any) -> Settings:
    if toml is not None:
        (root / "storytree.toml").write_text(toml)
    return load_settings(root=root, env=env or {}, variables=variables, **overrides)


def problems_of(root: Path, toml: str | None = None, env: dict[str, str] | None = None,
                variables: Mapping[str, str | None] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        settings_of(root, toml, env, variables)
    return str(raised.value).splitlines()


# -- precedence ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layers, expected", [
    ({}, None),
    ({"toml"}, 1.0),
    ({"toml", "env"}, 2.0),
    ({"toml", "env", "variable"}, 3.0),
    ({"toml", "env", "variable", "override"}, 4.0),
    ({"env", "override"}, 4.0),
    ({"toml", "variable"}, 3.0),
])
def test_each_layer_wins_over_the_ones_below(tmp_path: Path, layers: set[str], expected: float | None) -> None:
    settings = settings_of(tmp_path, toml="max_cost = 1.0\n" if "toml" in layers else None,
                           env={"STORYTREE_MAX_COST": "2"} if "env" in layers else {},
                           variables={"max_cost": "3"} if "variable" in layers else None,
                           max_cost=4.0 if "override" in layers else None)
    assert settings.max_cost == expected


def test_batch_goes_from_toml_to_environment_to_doit_variable(tmp_path: Path) -> None:
    toml = "[generation]\nbatch = true\nbatch_poll_seconds = 5\n"
    assert settings_of(tmp_path, toml).generation.batch is True
    assert settings_of(tmp_path, toml, env={"STORYTREE_BATCH": "off"}).generation.batch is False
    on = settings_of(tmp_path, toml, env={"STORYTREE_BATCH": "off"}, variables={"batch": "yes"})
    assert on.generation.batch is True and on.generation.batch_poll_seconds == 5  # the rest of the table is kept


def test_an_environment_variable_changes_one_key_of_a_toml_table(tmp_path: Path) -> None:
    toml = '[generation.key_frame]\naspect_ratio = "1:1"\nmodel = "from-toml"\n'
    settings = settings_of(tmp_path, toml, env={"STORYTREE_IMAGE_MODEL": "from-env"})
    assert settings.generation.key_frame.model == "from-env"
    assert settings.generation.key_frame.aspect_ratio == "1:1"


def test_the_paths_follow_the_root_the_data_folder_and_the_environment(tmp_path: Path) -> None:
    plain = settings_of(tmp_path)
    assert (plain.state_dir, plain.data_dir) == (tmp_path / ".storytree", tmp_path / ".storytree-data")
    assert plain.db_path == tmp_path / ".storytree-data" / "story.sqlite" and plain.db_path_is_default
    moved = settings_of(tmp_path, env={"STORYTREE_DATA_DIR": str(tmp_path / "keep")})
    assert moved.db_path == tmp_path / "keep" / "story.sqlite" and moved.db_path_is_default
    named = settings_of(tmp_path, 'db_path = "elsewhere.sqlite"\ndata_dir = "d"\n')
    assert named.db_path == Path("elsewhere.sqlite") and not named.db_path_is_default
    assert settings_of(tmp_path, 'data_dir = "d"\n', env={"STORYTREE_DATA_DIR": "e"}).data_dir == Path("e")
    assert not settings_of(tmp_path, env={"STORYTREE_DB": str(tmp_path / "x.sqlite")}).db_path_is_default


def test_storytree_root_wins_and_the_state_folder_is_found_without_loading_settings(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "storytree.toml").write_text("max_cost = 7\n")
    settings = load_settings(root=tmp_path, env={"STORYTREE_ROOT": str(other)})
    assert settings.root == other and settings.max_cost == 7
    assert state_dir({}, tmp_path) == tmp_path / ".storytree"
    assert state_dir({"STORYTREE_STATE_DIR": "/s"}, tmp_path) == Path("/s")


def test_settings_built_directly_read_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYTREE_MAX_COST", "abc")
    monkeypatch.setenv("STORYTREE_PROVIDER", "stub")
    settings = Settings(root=tmp_path)
    assert settings.provider == "gemini" and settings.max_cost is None
    assert settings.db_path == tmp_path / ".storytree-data" / "story.sqlite"


def test_load_settings_reads_the_real_environment_when_given_none(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYTREE_ROOT", str(tmp_path))
    monkeypatch.setenv("STORYTREE_PROVIDER", "stub")
    assert load_settings().provider == "stub"


# -- every environment variable -------------------------------------------------------------------------------------
ENVIRONMENT_CASES = [
    ("STORYTREE_STATE_DIR", "/st", lambda s: s.state_dir, Path("/st")),
    ("STORYTREE_DATA_DIR", "/da", lambda s: s.data_dir, Path("/da")),
    ("STORYTREE_DB", "/db/x.sqlite", lambda s: (s.db_path, s.db_path_is_default), (Path("/db/x.sqlite"), False)),
    ("STORYTREE_STORE", "supabase", lambda s: s.store, "supabase"),
    ("STORYTREE_PROVIDER", "stub", lambda s: s.provider, "stub"),
    ("STORYTREE_IMAGE_MODEL", "img-m", lambda s: (s.generation.character_plate.model,
                                                  s.generation.environment_keyframe.model,
                                                  s.generation.key_frame.model, s.generation.video.model == "img-m"),
     ("img-m", "img-m", "img-m", False)),
    ("STORYTREE_VIDEO_MODEL", "vid-m", lambda s: (s.generation.video.model, s.generation.key_frame.model == "vid-m"),
     ("vid-m", False)),
    ("GEMINI_API_KEY", "k1", lambda s: s.gemini_api_key and s.gemini_api_key.get_secret_value(), "k1"),
    ("GOOGLE_API_KEY", "k2", lambda s: s.gemini_api_key and s.gemini_api_key.get_secret_value(), "k2"),
    ("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9", lambda s: s.gemini_base_url, "http://127.0.0.1:9"),
    ("SUPABASE_URL", "http://127.0.0.1:8", lambda s: s.supabase_url, "http://127.0.0.1:8"),
    ("SUPABASE_SERVICE_ROLE_KEY", "srk", lambda s: s.supabase_service_role_key and s.supabase_service_role_key.get_secret_value(), "srk"),
    ("STORYTREE_STORY", "tale", lambda s: s.story, "tale"),
    ("STORYTREE_STUB_CALL_LOG", "/calls.log", lambda s: s.stub_call_log, Path("/calls.log")),
    ("STORYTREE_STUB_DELAY", "0.25", lambda s: s.stub_delay_seconds, 0.25),
    ("STORYTREE_MAX_COST", "12.5", lambda s: s.max_cost, 12.5),
    ("STORYTREE_YES", "1", lambda s: s.yes, True),
    ("STORYTREE_VIDEO_POLL_INTERVAL", "3", lambda s: s.video_poll_interval_seconds, 3.0),
    ("STORYTREE_VIDEO_POLL_DEADLINE", "60", lambda s: s.video_poll_deadline_seconds, 60.0),
    ("STORYTREE_BATCH", "1", lambda s: s.generation.batch, True),
    ("STORYTREE_BATCH_POLL", "7", lambda s: s.generation.batch_poll_seconds, 7.0),
    ("STORYTREE_VERBOSE", "1", lambda s: s.verbose, True),
    ("STORYTREE_FROZEN", "1", lambda s: s.frozen, True),
    ("CI", "true", lambda s: s.ci, True),
]


@pytest.mark.parametrize("name, text, read, expected", ENVIRONMENT_CASES, ids=[c[0] for c in ENVIRONMENT_CASES])
def test_every_environment_variable_sets_its_setting(tmp_path: Path, name: str, text: str, read: Any,
                                                    expected: Any) -> None:
    assert read(settings_of(tmp_path)) != expected  # the default differs, so the variable is what changed it
    assert read(settings_of(tmp_path, env={name: text})) == expected


def test_google_api_key_wins_over_gemini_api_key(tmp_path: Path) -> None:
    both = settings_of(tmp_path, env={"GEMINI_API_KEY": "gemini", "GOOGLE_API_KEY": "google"})
    assert both.gemini_api_key == SecretStr("google")


def test_a_blank_environment_variable_is_unset(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, "max_cost = 5\nverbose = true\n",
                           env={"STORYTREE_MAX_COST": "", "STORYTREE_VERBOSE": "", "STORYTREE_PROVIDER": ""})
    assert (settings.max_cost, settings.verbose, settings.provider) == (5, True, "gemini")


def test_doit_variables_set_provider_story_cost_verbose_and_batch(tmp_path: Path) -> None:
    given = {"provider": "stub", "story": "tale", "max_cost": "25", "verbose": "on", "batch": "1",
             "rebuild": "missing", "yes": "1", "frozen": "yes"}
    settings = settings_of(tmp_path, variables=given)
    assert set(RUN_VARIABLES) == set(given)
    assert (settings.provider, settings.story, settings.max_cost, settings.verbose, settings.generation.batch,
            settings.build.rebuild, settings.yes, settings.frozen) == ("stub", "tale", 25.0, True, True, "missing",
                                                                        True, True)
    unset = settings_of(tmp_path, variables=dict.fromkeys(RUN_VARIABLES))  # doit's get_var: None when not given
    assert (unset.provider, unset.story, unset.max_cost, unset.verbose, unset.yes) == ("gemini", None, None, False,
                                                                                        False)
    blank = settings_of(tmp_path, variables={"provider": "", "story": ""})  # `provider=`: not given, as before
    assert (blank.provider, blank.story) == ("gemini", None)


@pytest.mark.parametrize("env, variables, frozen", [
    ({}, {}, False),
    ({"CI": "true"}, {}, True),  # CI services set CI: a stale manifest is refused there
    ({"CI": "1"}, {}, True),
    ({"CI": "false"}, {}, False),
    ({"CI": "true"}, {"frozen": "0"}, False),  # a CI job that means to regenerate says so
    ({"CI": "true", "STORYTREE_FROZEN": "no"}, {}, False),
    ({"STORYTREE_FROZEN": "1"}, {}, True),
    ({}, {"frozen": "1"}, True),
])
def test_manifests_are_frozen_in_ci_unless_frozen_says_otherwise(tmp_path: Path, env: dict[str, str],
                                                                 variables: dict[str, str], frozen: bool) -> None:
    assert settings_of(tmp_path, env=env, variables=variables or None).manifest_frozen is frozen


# -- flags --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("word, meaning", [
    ("true", True), ("TRUE", True), ("yes", True), ("Yes", True), ("on", True), ("ON", True), ("1", True),
    ("false", False), ("False", False), ("no", False), ("NO", False), ("off", False), ("Off", False), ("0", False),
    (" yes ", True),
])
def test_flags_take_the_usual_words(tmp_path: Path, word: str, meaning: bool) -> None:
    opposite = "false" if meaning else "true"
    toml = f"verbose = {opposite}\n[generation]\nbatch = {opposite}\n"
    from_env = settings_of(tmp_path, toml, env={"STORYTREE_VERBOSE": word, "STORYTREE_BATCH": word})
    assert (from_env.verbose, from_env.generation.batch) == (meaning, meaning)
    from_doit = settings_of(tmp_path, toml, variables={"verbose": word, "batch": word})
    assert (from_doit.verbose, from_doit.generation.batch) == (meaning, meaning)


def test_verbose_no_is_off(tmp_path: Path) -> None:
    """Was a bug: STORYTREE_VERBOSE=no (or NO, off, False) turned verbose on."""
    for word in ("no", "NO", "off", "False"):
        assert settings_of(tmp_path, env={"STORYTREE_VERBOSE": word}).verbose is False, word


@pytest.mark.parametrize("name", ["STORYTREE_VERBOSE", "STORYTREE_BATCH"])
def test_a_flag_that_is_no_flag_word_names_the_variable(tmp_path: Path, name: str) -> None:
    assert problems_of(tmp_path, env={name: "maybe"}) == [
        f"{name}='maybe' is not true or false (use true/false, yes/no, on/off or 1/0)"]


def test_a_doit_flag_that_is_no_flag_word_names_the_doit_variable(tmp_path: Path) -> None:
    assert problems_of(tmp_path, variables={"verbose": "loud"}) == [
        "doit variable verbose='loud' is not true or false (use true/false, yes/no, on/off or 1/0)"]


def test_a_doit_flag_given_blank_is_off(tmp_path: Path) -> None:
    assert settings_of(tmp_path, "verbose = true\n", variables={"verbose": ""}).verbose is False


@pytest.mark.parametrize("text, meaning", [("true", True), ("1", True), ("woodpecker", True), ("false", False),
                                           ("0", False), ("no", False)])
def test_ci_is_on_unless_it_says_no(tmp_path: Path, text: str, meaning: bool) -> None:
    """CI is not ours: CI systems set it to true, 1 or their own name, and it only ever makes the providers stricter."""
    assert settings_of(tmp_path, env={"CI": text}).ci is meaning


# -- bad values: one line each, naming the place ----------------------------------------------------------------
def test_a_cost_that_is_no_number_names_the_variable(tmp_path: Path) -> None:
    """Was a bug: STORYTREE_MAX_COST=abc ended in a ValueError traceback."""
    assert problems_of(tmp_path, env={"STORYTREE_MAX_COST": "abc"}) == [
        "STORYTREE_MAX_COST='abc' is not a number (e.g. STORYTREE_MAX_COST=12.50)"]


@pytest.mark.parametrize("name, text, line", [
    ("STORYTREE_STUB_DELAY", "slow", "STORYTREE_STUB_DELAY='slow' is not a number (e.g. STORYTREE_STUB_DELAY=0.5)"),
    ("STORYTREE_VIDEO_POLL_DEADLINE", "0", "STORYTREE_VIDEO_POLL_DEADLINE='0' must be more than 0"),
    ("STORYTREE_VIDEO_POLL_INTERVAL", "-1", "STORYTREE_VIDEO_POLL_INTERVAL='-1' must be at least 0"),
    ("STORYTREE_BATCH_POLL", "1m", "STORYTREE_BATCH_POLL='1m' is not a number (e.g. STORYTREE_BATCH_POLL=30)"),
    ("STORYTREE_STORE", "mysql", "STORYTREE_STORE='mysql' must be one of 'sqlite' or 'supabase'"),
])
def test_a_bad_environment_value_is_one_line_naming_it(tmp_path: Path, name: str, text: str, line: str) -> None:
    assert problems_of(tmp_path, env={name: text}) == [line]


def test_a_bad_doit_variable_names_the_doit_variable(tmp_path: Path) -> None:
    for text in ("lots", ""):
        assert problems_of(tmp_path, variables={"max_cost": text}) == [
            f"doit variable max_cost={text!r} is not a number (e.g. max_cost=12.50)"]


@pytest.mark.parametrize("toml, line", [
    ("[gemini]\nmax_attempts = 0\n", "storytree.toml: [gemini] max_attempts = 0: must be at least 1"),
    ("[gemini]\ntimeout_seconds = \"soon\"\n",
     'storytree.toml: [gemini] timeout_seconds = "soon": is not a number (e.g. timeout_seconds = 180.0)'),
    ("[gemini]\nmax_concurrency = 2.5\n",
     "storytree.toml: [gemini] max_concurrency = 2.5: is not a whole number (e.g. max_concurrency = 4)"),
    ("max_cost = \"a lot\"\n", 'storytree.toml: max_cost = "a lot": is not a number (e.g. max_cost = 12.5)'),
    ("[review]\nkey_frames = \"sometimes\"\n",
     "storytree.toml: [review] key_frames = \"sometimes\": must be one of 'off' or 'required'"),
    ("[build]\nadopt_existng = false\n", "storytree.toml: [build] adopt_existng: unknown setting (did you mean "
     "adopt_existing? known: adopt_existing, claim_lease_seconds, claim_poll_seconds, confirm_above, rebuild, "
     "stop_grace_seconds)"),
    ("[build]\nconfirm_above = -1\n", "storytree.toml: [build] confirm_above = -1: must be at least 0"),
    ("build = 3\n", "storytree.toml: build = 3: must be a table"),
    ("[generation.key_frame]\nmodel = 3\n", "storytree.toml: [generation.key_frame] model = 3: must be text"),
    ("[gemini.model_concurrency]\n\"gemini-3.1-flash-image\" = \"two\"\n",
     'storytree.toml: [gemini.model_concurrency] "gemini-3.1-flash-image" = "two": is not a whole number'),
    ("[gemini]\nimage_size_models = [\"a*\", 3]\n", "storytree.toml: [gemini] image_size_models[1] = 3: must be text"),
    ("db_path = 5\n", 'storytree.toml: db_path = 5: must be a path, written as text (e.g. db_path = "folder/file")'),
])
def test_a_bad_toml_value_names_its_key(tmp_path: Path, toml: str, line: str) -> None:
    assert problems_of(tmp_path, toml) == [line]


def test_an_unknown_top_level_key_lists_the_settings(tmp_path: Path) -> None:
    [line] = problems_of(tmp_path, "maxcost = 5\n")
    assert line.startswith("storytree.toml: maxcost: unknown setting (did you mean max_cost? known: build, ci, ")
    assert "db_path" in line and "root" not in line and "db_path_is_default" not in line


def test_a_bad_rate_limit_names_the_model_and_the_form(tmp_path: Path) -> None:
    assert problems_of(tmp_path, '[gemini.rate_limits]\n"gemini-3.1-flash-image" = "ten a minute"\n') == [
        "storytree.toml: [gemini.rate_limits] \"gemini-3.1-flash-image\": 'ten a minute': write a count per unit, "
        'e.g. "10/min", "2/s", "100/hour", "500/day" or "10/min, 500/day"']


def test_a_bad_price_table_names_its_key(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "[prices]\nimage_batch_factor = 2\n") == [
        "storytree.toml: [prices] image_batch_factor = 2: must be at most 1"]


def test_every_problem_is_told_at_once_one_line_each(tmp_path: Path) -> None:
    lines = problems_of(tmp_path, "[gemini]\nmax_attempts = 0\n",
                        env={"STORYTREE_MAX_COST": "abc", "STORYTREE_VERBOSE": "maybe"})
    assert sorted(lines) == sorted([
        "STORYTREE_VERBOSE='maybe' is not true or false (use true/false, yes/no, on/off or 1/0)",
        "STORYTREE_MAX_COST='abc' is not a number (e.g. STORYTREE_MAX_COST=12.50)",
        "storytree.toml: [gemini] max_attempts = 0: must be at least 1"])


def test_the_value_that_won_is_the_one_named(tmp_path: Path) -> None:
    """A bad toml value hidden under a good environment value is not an error; a bad one over a good one names the
    environment variable."""
    assert settings_of(tmp_path, 'max_cost = "x"\n', env={"STORYTREE_MAX_COST": "3"}).max_cost == 3
    assert problems_of(tmp_path, "max_cost = 3\n", env={"STORYTREE_MAX_COST": "x"}) == [
        "STORYTREE_MAX_COST='x' is not a number (e.g. STORYTREE_MAX_COST=12.50)"]


@pytest.mark.parametrize("toml, line", [
    ("[gemini\nmax_attempts = 2\n", "line 1, column 8: not valid TOML (Expected ']' at the end of a table declaration)"),
    ("[build]\nadopt_existing = maybe\n", "line 2, column 18: not valid TOML (Invalid value)"),
    ("max_cost =", "not valid TOML (Invalid value at the end of the file)"),
])
def test_text_that_is_not_toml_names_the_file_line_and_column(tmp_path: Path, toml: str, line: str) -> None:
    assert problems_of(tmp_path, toml) == [f"{tmp_path / 'storytree.toml'}, {line}"]


# -- secrets --------------------------------------------------------------------------------------------------------
def test_no_error_shows_a_secret(tmp_path: Path) -> None:
    env = {"GEMINI_API_KEY": SECRET, "GOOGLE_API_KEY": SECRET, "SUPABASE_SERVICE_ROLE_KEY": SECRET,
           "STORYTREE_MAX_COST": "abc", "STORYTREE_VERBOSE": "maybe"}
    toml = f'supabase_service_role_key = ["{SECRET}"]\ngemini_api_key = {{ value = "{SECRET}" }}\n[gemini]\n' \
           'max_attempts = 0\n'
    lines = problems_of(tmp_path, toml, env=env, variables={"max_cost": "x"})
    assert len(lines) == 3 and all(SECRET not in line for line in lines)  # the key from the env wins, and is fine
    toml_lines = problems_of(tmp_path, toml)
    assert "storytree.toml: gemini_api_key: must be text" in toml_lines
    assert "storytree.toml: supabase_service_role_key: must be text" in toml_lines
    assert all(SECRET not in line for line in toml_lines)
    digits = "98765432109876543210"  # a numeric token pasted without quotes
    assert problems_of(tmp_path, f"gemini_api_key = {digits}\n") == ["storytree.toml: gemini_api_key: must be text"]
    settings = settings_of(tmp_path, "", env={"GEMINI_API_KEY": SECRET})
    assert SECRET not in repr(settings) and SECRET not in str(settings)


# -- at the edges: the CLI and doit --------------------------------------------------------------------------------
def test_the_cli_prints_the_line_and_exits_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STORYTREE_ROOT", str(tmp_path))
    monkeypatch.setenv("STORYTREE_MAX_COST", "abc")
    assert main(["export", "some-story"]) == ConfigError.exit_code
    err = capsys.readouterr().err
    assert err == "storytree: error: STORYTREE_MAX_COST='abc' is not a number (e.g. STORYTREE_MAX_COST=12.50)\n"


def test_doit_names_a_bad_environment_value_and_builds_nothing(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project")
    result = doit(root, "story:any", env=project_env(root, STORYTREE_MAX_COST="abc", STORYTREE_VERBOSE="no"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "STORYTREE_MAX_COST='abc' is not a number (e.g. STORYTREE_MAX_COST=12.50)" in result.stderr
    assert "Traceback" not in result.stderr and "verbose" not in result.stderr.lower()
