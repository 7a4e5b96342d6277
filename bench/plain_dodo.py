"""Plain-doit baseline (bench/noop.py): the tasks of a storytree story written as an ordinary dodo file, with doit's
own up-to-date checks instead of storytree's pay-once records.

    cd <project> && python /path/to/bench/plain_dodo.py story:<story-id> provider=stub   # doit's own `run`
    cd <project> && python /path/to/bench/plain_dodo.py list --all

Same task names, targets and task_dep as storytree's dodo.py (doit/tasks.py), from the same manifest file:

- asset task `ref:…` / `image:…` / `video:…`: targets = its output; file_dep = its reference images; uptodate =
  config_changed over what storytree's record signature holds besides the reference hashes (prompt sha256, model,
  config, provider); task_dep = the manifest's depends_on;
- `shot:<key>` and `story:<id>` groups; `gallery:<id>`: target = the review page, file_dep = every asset (the page
  shows them all).

The manifest is read the way a plain dodo file would read it: YAML with libyaml's CSafeLoader
(`PLAIN_DODO_MANIFEST=json` reads a JSON copy instead, written next to it on first use, to show how much of the
baseline is the YAML parse). Nothing of storytree is imported, and running this file directly uses doit without
plugins: the venv registers storytree's `run` and `dryrun` as doit entry points, which would import storytree.

Actions never write an asset (the assets are storytree's, and storytree checks their hashes): an action only checks
that its target exists, so the first run records doit's state and every later run is a no-op.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from doit import get_var

ASSETS = Path("apps/story-tree-ui/public/generated")
PAGES = Path("apps/story-tree-ui/public/stories")

DOIT_CONFIG = {
    "default_tasks": [],
    "backend": "sqlite3",  # as storytree's
    "dep_file": os.environ.get("PLAIN_DODO_DEP_FILE", ".plain-doit.sqlite"),
    "verbosity": 1,
}


def _story_id() -> str:
    chosen = get_var("story")
    if chosen:
        return chosen
    for arg in sys.argv[1:]:
        if arg.startswith("story:"):
            return arg.partition(":")[2]
    found = sorted(Path("manifests").glob("*.yaml"))
    if len(found) != 1:
        raise SystemExit(f"plain_dodo: name the story (story:<id>), {len(found)} manifests found")
    return found[0].stem


def _load_manifest(story_id: str) -> dict:
    path = Path("manifests") / f"{story_id}.yaml"
    if os.environ.get("PLAIN_DODO_MANIFEST") == "json":
        st = path.stat()
        copy = Path(".plain-doit-manifest") / f"{story_id}.{st.st_size}.{st.st_mtime_ns}.json"
        try:
            return json.loads(copy.read_bytes())
        except FileNotFoundError:
            data = _load_yaml(path)
            copy.parent.mkdir(exist_ok=True)
            copy.write_text(json.dumps(data), encoding="utf-8")
            return data
    return _load_yaml(path)


def _load_yaml(path: Path) -> dict:
    import yaml

    with open(path, "rb") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _exists(path: str) -> bool:
    if not os.path.exists(path):
        print(f"{path} is missing: build it with storytree first (this baseline never writes assets)",
              file=sys.stderr)
        return False
    return True


def task_plain():
    from doit.tools import config_changed

    manifest = _load_manifest(_story_id())
    story_id = manifest["story_id"]
    provider = get_var("provider", "gemini")
    shots: dict[str, list[str]] = {}
    for target in manifest["targets"]:
        basename, _, name = target["task"].partition(":")
        output = str(ASSETS / target["output"])
        signature = {"prompt_sha256": target["prompt_sha256"], "model": target["model"], "config": target["config"],
                     "provider": provider}
        yield {
            "basename": basename,
            "name": name,
            "actions": [(_exists, [output])],
            "targets": [output],
            "file_dep": [str(ASSETS / ref["path"]) for ref in target.get("references", ())],
            "uptodate": [config_changed(signature)],
            "task_dep": list(target.get("depends_on", ())),
            "doc": f"{target['kind']} → {target['output']}",
        }
        shot = target.get("shot")
        if shot is not None:
            shots.setdefault(f"{shot['scenelet_id']}_{shot['shot_index']}", []).append(target["task"])
    for key, members in shots.items():
        yield {"basename": "shot", "name": key, "actions": None, "task_dep": members,
               "doc": f"key frame and video of shot {key}"}
    page = str(PAGES / story_id / "index.html")
    yield {"basename": "gallery", "name": story_id, "actions": [(_exists, [page])], "targets": [page],
           "file_dep": [str(ASSETS / t["output"]) for t in manifest["targets"]], "doc": "review page"}
    yield {"basename": "story", "name": story_id, "actions": None,
           "task_dep": [t["task"] for t in manifest["targets"]] + [f"gallery:{story_id}"],
           "doc": f"every asset of {manifest['display_name']}, then its review page"}


if __name__ == "__main__":
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain
    from doit.plugin import PluginDict

    class PlainDoit(DoitMain):
        def get_cmds(self) -> PluginDict:  # doit's own commands only: no entry-point plugins
            cmds = PluginDict()
            for cmd in self.DOIT_CMDS:
                cmds[cmd.get_name()] = cmd
            return cmds

    sys.exit(PlainDoit(ModuleTaskLoader(globals()), config_filenames=()).run(sys.argv[1:]))
