"""doit glue: one task per target file, plus `shot:` and `story:` groups. `dodo.py` only imports this.

Task names (one story per invocation, so scenelet ids are unambiguous):
    ref:character.<character-id>.<plate-type>-<n>   one visual-reference plate
    ref:environment.<environment-id>.keyframe_<n>   one environment keyframe
    image:<scenelet-id>_<n>                         one shot key frame
    video:<scenelet-id>_<n>                         one shot video
    shot:<scenelet-id>_<n>                          key frame + video (+ the references they use)
    story:<story-id>                                everything of the story
    gallery:<story-id>                              the story's review page (last in story:<id>; never pays)
Groups `ref`, `image`, `video` are doit's own basename groups (CREATE_VISUAL_REFERENCE_IMAGES,
CREATE_SHOT_IMAGES, CREATE_SHOT_VIDEO); wildcards filter them (`doit 'image:scenelet-2_*'`).
"""

from __future__ import annotations

import fnmatch
import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

from doit import get_var
from doit.exceptions import InvalidCommand, TaskFailed

from .build import BuildContext
from .doit_reporter import SummaryReporter
from .errors import StorytreeError
from .manifest import load_manifest_file, manifest_path
from .settings import Settings, load_settings

log = logging.getLogger("storytree")

# The context of the story loaded by this process. doit gives commands no other way to reach
# the objects behind the tasks it loaded (the dryrun command needs them).
ACTIVE: dict[str, BuildContext] = {}


class RecordCheck:
    """doit `uptodate` item: the pay-once record decides, so losing `.doit.db` rebuilds nothing."""

    def __init__(self, ctx: BuildContext, task: str):
        self.ctx, self.task = ctx, task

    def __call__(self) -> bool:
        if self.task == self.ctx.download_link_task:
            return False  # an explicit link is always fetched, even over an existing video
        current = self.ctx.status(self.task).current
        self.ctx.checked[self.task] = current
        return current

    def __repr__(self) -> str:
        return f"RecordCheck({self.task})"


def forced_by_selection(task: str, argv: list[str]) -> bool:
    """`doit -a X` forces what X names (a target, a shot, a story, a group or a glob), never the
    references X merely depends on: those stay paid-for unless they are named too."""
    basename, name = task.split(":", 1)
    for arg in argv:
        if arg.startswith("-") or "=" in arg:
            continue
        if arg in (task, basename) or fnmatch.fnmatchcase(task, arg) and "*" in arg:
            return True
        if arg.startswith("story:"):
            return True
        if arg.startswith("shot:") and basename in ("image", "video") and arg[5:] == name:
            return True
    return False


def build_action(ctx: BuildContext, task: str, download_link: str = "") -> Any:
    # doit runs an action whose uptodate said "current" only under -a/--always-execute.
    force = ctx.checked.get(task) is True and forced_by_selection(task, ctx.argv)
    try:
        if download_link:
            from .video_links import download_from_link

            outcome = download_from_link(ctx, task, download_link)
        else:
            outcome = ctx.build(task, force=force)
    except StorytreeError as exc:
        ctx.summary.fail(task, str(exc))
        return TaskFailed(str(exc))  # doit prints it once, without a traceback
    if outcome.action != "up to date":
        log.info("%s: %s %s", task, outcome.action, outcome.detail)
    return None


def check_download_link(argv: list[str]) -> str | None:
    """`--download-link` fills exactly one shot's video: the only task named must be one `video:<scenelet>_<n>`.
    Returns that task name (or None when no link was given)."""
    uses = [i for i, a in enumerate(argv) if a == "--download-link" or a.startswith("--download-link=")]
    if not uses:
        return None
    skip = {i + 1 for i in uses if argv[i] == "--download-link"}
    if any(i < len(argv) and "=" in argv[i] and not argv[i].startswith("-") for i in skip):
        # doit takes every NAME=VALUE argument for a variable before any task option is parsed.
        raise InvalidCommand("a link containing '=' (every Gemini link ends in ?alt=media) must be attached to the "
                             "option: `doit video:<scenelet-id>_<n> --download-link=URL`.")
    named = [a for i, a in enumerate(argv)
             if i not in skip and not a.startswith("-") and "=" not in a and a != "run"]
    if len(uses) != 1 or len(named) != 1 or not named[0].startswith("video:") or "*" in named[0]:
        raise InvalidCommand(
            "--download-link applies to exactly one shot: `doit video:<scenelet-id>_<n> --download-link=URL` "
            "(no other tasks, groups or wildcards in the same command).")
    return named[0]


def choose_story(settings: Settings, argv: list[str]) -> str | None:
    """One story per invocation: `story=<id>`, STORYTREE_STORY, a `story:<id>` argument, or the only manifest."""
    chosen = get_var("story", None) or settings.story
    named = sorted({a.split(":", 1)[1] for a in argv if a.startswith(("story:", "gallery:")) and "*" not in a})
    if len(named) > 1:
        raise InvalidCommand(f"one story per invocation, but {len(named)} were named: {', '.join(named)}.")
    if named:
        if chosen and chosen != named[0]:
            raise InvalidCommand(f"story={chosen} conflicts with story:{named[0]}.")
        chosen = named[0]
    if chosen:
        return chosen
    manifests = sorted(p.stem for p in settings.manifests_dir.glob("*.yaml"))
    if len(manifests) == 1:
        return manifests[0]
    if not manifests:
        return None
    wants_tasks = [a for a in argv if not a.startswith("-") and "=" not in a and a not in ("run", "list", "dryrun")]
    if wants_tasks:
        raise InvalidCommand((
            f"{len(manifests)} stories have manifests ({', '.join(manifests)}); scenelet ids repeat across stories, "
            "so name one: `doit story:<id>` or add `story=<id>` (e.g. `doit shot:scenelet-1_1 story=<id>`)."))
    return None


DOIT_COMMANDS_THAT_DO_NOT_BUILD = {"list", "info", "forget", "ignore", "help", "clean", "dumpdb", "strace",
                                   "reset-dep", "tabcompletion", "dryrun"}


def builds(args: list[str]) -> bool:
    positional = [a for a in args if not a.startswith("-") and "=" not in a]
    return bool(positional) and positional[0] not in DOIT_COMMANDS_THAT_DO_NOT_BUILD


def enforce_budget(ctx: BuildContext, args: list[str]) -> None:
    """Refuse to start a build whose estimated cost exceeds max_cost, naming the biggest items."""
    limit = ctx.budget.limit
    positional = [a for a in args if not a.startswith("-") and "=" not in a]
    if limit is None or not positional or positional[0] in DOIT_COMMANDS_THAT_DO_NOT_BUILD:
        return
    selection = [a for a in positional if a != "run"]
    from .plan import expand_selection, make_plan

    try:
        always = any(a in ("-a", "--always-execute") for a in args)
        forced = {t for t in expand_selection(ctx, selection) if forced_by_selection(t, selection)} if always else set()
        plan = make_plan(ctx, selection, forced, validate=False)
    except StorytreeError:
        return  # doit itself reports unknown task names
    currency = ctx.settings.prices.currency
    if plan.unpriced:
        models = sorted({ctx.target(i.task).model for i in plan.unpriced})
        raise InvalidCommand(f"max_cost={limit:g} is set but the price table has no price for {', '.join(models)}; "
                             "add it to [prices] in storytree.toml so the cap can be enforced.")
    if plan.total > limit:
        lines = "\n".join(f"  {i.cost:8.2f} {currency}  {i.task}" for i in plan.biggest())
        raise InvalidCommand(
            f"refused: this build is estimated at {plan.total:.2f} {currency}, over max_cost={limit:g}.\n"
            f"Biggest items:\n{lines}\nSee `doit dryrun {' '.join(selection)}` for the whole bill; raise max_cost "
            "or build a smaller selection.")


def make_context(settings: Settings, story_id: str) -> BuildContext:
    manifest = load_manifest_file(manifest_path(settings, story_id), cache_dir=settings.state_dir / "cache")
    provider = get_var("provider", None) or settings.provider
    ctx = BuildContext(settings, manifest, provider)
    ACTIVE["ctx"] = ctx
    return ctx


def generate_tasks(ctx: BuildContext) -> Iterator[dict[str, Any]]:
    root = ctx.settings.assets_root
    shots: dict[str, list[str]] = {}
    for target in ctx.manifest.targets:
        basename, name = target.task.split(":", 1)
        task: dict[str, Any] = {
            "basename": basename,
            "name": name,
            "actions": [(build_action, [ctx, target.task])],
            "targets": [str(root / target.output)],
            "uptodate": [RecordCheck(ctx, target.task)],
            "task_dep": list(target.depends_on),
            "doc": f"{target.kind} → {target.output}",
        }
        if target.kind == "video":
            task["params"] = [{"name": "download_link", "long": "download-link", "type": str, "default": "",
                               "help": "download this already generated video instead of calling the model"}]
        if target.shot is not None:
            shots.setdefault(f"{target.shot.scenelet_id}_{target.shot.shot_index}", []).append(target.task)
        yield task
    for key, members in shots.items():
        yield {"basename": "shot", "name": key, "actions": None, "task_dep": members,
               "doc": f"key frame and video of shot {key}"}
    from .gallery import gallery_task, task_name as gallery_name

    yield gallery_task(ctx)  # the review page: never calls a provider, listed last so it runs after the assets
    yield {"basename": "story", "name": ctx.manifest.story_id, "actions": None,
           "task_dep": [t.task for t in ctx.manifest.targets] + [gallery_name(ctx.manifest.story_id)],
           "doc": f"every asset of {ctx.manifest.display_name}, then its review page"}


def configure_process() -> None:
    # doit saves its own database only when a run ends; turn SIGTERM into Ctrl-C so it still gets saved.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Building thousands of small task dicts triggers many useless GC passes.
    gc.set_threshold(100_000, 50, 100)
    if not logging.getLogger("storytree").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("storytree: %(message)s"))
        logging.getLogger("storytree").addHandler(handler)
        logging.getLogger("storytree").setLevel(logging.INFO)


def dodo_tasks(argv: list[str] | None = None, root: Path | None = None) -> Iterator[dict[str, Any]]:
    configure_process()
    try:
        settings = load_settings(root=root)
        settings.state_dir.mkdir(parents=True, exist_ok=True)  # doit opens its dep_file there
        if get_var("verbose", None):
            settings = settings.model_copy(update={"verbose": True})
        args = list(sys.argv[1:] if argv is None else argv)
        link_task = check_download_link(args)
        story_id = choose_story(settings, args)
        if story_id is None:
            return
        ctx = make_context(settings, story_id)
        ctx.argv = args
        ctx.download_link_task = link_task
        max_cost = get_var("max_cost", None)
        try:
            ctx.budget.limit = float(max_cost) if max_cost is not None else settings.max_cost
        except ValueError:
            raise InvalidCommand(f"max_cost={max_cost!r} is not a number (e.g. max_cost=12.50).") from None
        if builds(args):
            from .identity import reconcile

            reconcile(ctx)  # scenelet labels shifted: rename paid assets before deciding what to build
        enforce_budget(ctx, args)
    except StorytreeError as exc:
        raise InvalidCommand(str(exc)) from None
    yield from generate_tasks(ctx)


def doit_config() -> dict[str, Any]:
    """doit opens its dep_file before it loads any task, so its folder must exist first."""
    Path(".storytree").mkdir(exist_ok=True)
    return dict(DOIT_CONFIG)


DOIT_CONFIG = {
    "default_tasks": [],  # a bare `doit` builds nothing: every paid build is asked for by name
    "backend": "sqlite3",
    "dep_file": ".storytree/doit.sqlite",
    "minversion": "0.37.0",
    "reporter": SummaryReporter,
    "verbosity": 2,
}
