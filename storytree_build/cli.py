"""`storytree` console script: data commands around the doit build. Exit codes: core/exit_codes.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

# Only the standard library and the light error types at the top: `storytree --help` and a usage error stop before
# settings or a store exist, so the commands import what they use (issue 25: start-up is most of what they cost).
from .core.errors import InputError, StorytreeError
from .core.exit_codes import ExitCode

if TYPE_CHECKING:
    from .bootstrap import Workspace
    from .settings import Settings


def cmd_import(workspace: Workspace, args: argparse.Namespace) -> int:
    from .data.transfer import import_file

    counts = import_file(Path(args.file), workspace.store(), workspace.state(), new_ids=args.new_ids)
    built = f", {counts['records']} build records" if counts.get("records") else ""
    built += f", {counts['reviews']} reviews" if counts.get("reviews") else ""
    fresh = " (scenelets and shots under new row ids)" if args.new_ids else ""
    print(f"imported {counts['stories']} stories, {counts['scenelets']} scenelets, {counts['shots']} shots{built} "
          f"into {workspace.settings.store}{fresh}", file=sys.stderr)
    return ExitCode.OK


def cmd_export(workspace: Workspace, args: argparse.Namespace) -> int:
    from .data.transfer import export_story
    from .files.atomic import write_text_atomic

    text = export_story(workspace.store(), args.story_id, workspace.state())
    if args.output:
        write_text_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return ExitCode.OK


def cmd_ingest(workspace: Workspace, args: argparse.Namespace) -> int:
    from .data.shot_production import ingest_files

    rows = ingest_files(workspace.store(), args.story_id, [Path(f) for f in args.files])
    print(f"ingested {len(rows)} shots into story {args.story_id}", file=sys.stderr)
    return ExitCode.OK


def cmd_manifest(workspace: Workspace, args: argparse.Namespace) -> int:
    from .core.manifest import summary
    from .core.manifest.file import unified_diff

    settings = workspace.settings
    story_ids = args.story_ids
    if args.check:
        if not story_ids:
            story_ids = sorted(p.stem for p in settings.manifests_dir.glob("*.yaml"))
        drifted = 0
        for story_id in story_ids:
            path = workspace.manifest_path(story_id)
            fresh, _ = workspace.render_manifest(story_id)
            committed = path.read_text(encoding="utf-8") if path.exists() else ""
            if fresh != committed:
                drifted += 1
                sys.stdout.write(unified_diff(committed, fresh, str(path.relative_to(settings.root))))
                print(f"drift: {path.relative_to(settings.root)} does not match story {story_id}; "
                      f"run `storytree manifest {story_id}` and commit it.", file=sys.stderr)
            else:
                print(f"ok: {path.relative_to(settings.root)} is up to date", file=sys.stderr)
        return ExitCode.CHECK_FOUND_WORK if drifted else ExitCode.OK
    if not story_ids:
        raise InputError("name at least one story id (see `storytree export --help` for the ids you have).")
    for story_id in story_ids:
        manifest = workspace.write_manifest(story_id)
        path = workspace.manifest_path(story_id)
        counts = summary(manifest)
        print(f"wrote {path.relative_to(settings.root)}: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
              file=sys.stderr)
    return ExitCode.OK


def cmd_prompt(workspace: Workspace, args: argparse.Namespace) -> int:
    story_id = args.story or _only_story(workspace.settings)
    session = workspace.session(story_id)
    try:
        if args.task not in session.manifest.by_task():
            raise InputError(f"{args.task} is not a target of story {story_id}; `doit list --all` shows the names.")
        target = session.target(args.task)
        user, system = session.requests.render(target)
    finally:
        session.close()
    out = {"task": target.task, "model": target.model, "config": target.config,
           "system_instruction": system, "user_prompt": user,
           "references": [r.model_dump() for r in target.references], "prompt_sha256": target.prompt_sha256}
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(f"== {target.task} ({target.model}, {json.dumps(target.config)})")
        print("== system instruction:\n" + (system or "(none)"))
        print("== user prompt:\n" + user)
        print("== reference images (in order):")
        for r in target.references:
            print(f"  - {r.kind}: {r.id} -> {r.path}")
        if not target.references:
            print("  (none)")
    return ExitCode.OK


def cmd_resubmit(workspace: Workspace, args: argparse.Namespace) -> int:
    operations = workspace.state().operations(args.story_id)
    op = operations.get(args.task)
    if op is None:
        print(f"{args.task}: no pending or uncertain submission recorded; nothing to clear.", file=sys.stderr)
        return ExitCode.OK
    operations.delete(args.task)
    print(f"{args.task}: cleared the {op.state} submission of {op.submitted_at}; the next build submits (and pays) again.",
          file=sys.stderr)
    return ExitCode.OK


def cmd_release(workspace: Workspace, args: argparse.Namespace) -> int:
    """Free a claim whose owner is gone for good (a machine that will not come back) before its lease runs out."""
    released = workspace.state().claims(args.story_id).release(args.task)
    if released is None:
        print(f"{args.task}: no claim recorded; nothing to release.", file=sys.stderr)
        return ExitCode.OK
    print(f"{args.task}: released the claim of {released.owner} (since {released.claimed_at}); the next build may "
          "pay for it, so make sure that worker is no longer running.", file=sys.stderr)
    return ExitCode.OK


def cmd_review(workspace: Workspace, args: argparse.Namespace) -> int:
    from .review.verdicts import clean_note

    desk = workspace.review_desk(args.story_id)
    if args.verdict == "list":
        rows = desk.list()
        if args.json:
            print(json.dumps([row.__dict__ for row in rows], indent=2))
            return ExitCode.OK
        for row in rows:
            note = f"  note: {row.note}" if row.note else ""
            print(f"{row.state:<11} {row.task}  {row.output}{note}")
        waiting = sum(1 for r in rows if r.kind == "key_frame" and r.state != "approved")
        print(f"{len(rows)} targets; {waiting} key frame(s) not approved "
              f"([review] key_frames = \"{workspace.settings.review.key_frames}\")", file=sys.stderr)
        return ExitCode.OK
    if not args.tasks and not args.all:
        raise InputError(f"`storytree review {args.verdict}` needs the targets, e.g. "
                         f"`storytree review {args.verdict} {args.story_id} image:scenelet-1_1`, a wildcard "
                         f"('image:scenelet-2_*'), or --all.")
    if args.verdict == "approve" and args.note:
        raise InputError("--note goes with `storytree review reject` (an approval needs no note).")
    tasks = desk.select(args.tasks, every=args.all)
    if args.verdict == "reject":
        clean_note(tasks[0], args.note)  # a bad note is refused before the first verdict is written
    rewritten: list[str] = []
    for task in tasks:
        outcome = desk.approve(task) if args.verdict == "approve" else desk.reject(task, args.note)
        review = outcome.review
        said = f" with the note: {review.note}" if review.note and review.verdict == "rejected" else ""
        print(f"{review.verdict} {review.task} (file {review.output_sha256[:12]}){said}", file=sys.stderr)
        rewritten += [t for t in outcome.now_out_of_date if t not in rewritten]
    if len(tasks) > 1:
        print(f"{len(tasks)} targets {'approved' if args.verdict == 'approve' else 'rejected'}", file=sys.stderr)
    if rewritten:
        print(f"rewrote manifests/{args.story_id}.yaml: the director's note changed the prompt of "
              f"{', '.join(rewritten)}; `doit dryrun story:{args.story_id}` shows what the next build "
              "pays for.", file=sys.stderr)
    return ExitCode.OK


def cmd_serve(workspace: Workspace, args: argparse.Namespace) -> int:
    from .gallery.serve import new_token, serve

    api = workspace.review_api(new_token(), args.read_only)
    return serve(workspace.settings.public_root, api, port=args.port, verbose=args.verbose)


def cmd_verify(workspace: Workspace, args: argparse.Namespace) -> int:
    from .building.verify import verify

    provider = args.provider or workspace.settings.provider
    session = workspace.session(args.story_id, provider)
    try:
        report = verify(session.manifest, workspace.store().load_story(args.story_id), session.facts,
                        session.operations, session.outputs, repair=not args.no_repair)
    finally:
        session.close()
    for line in report.repaired:
        print(f"repaired: {line}")
    for line in report.notes:
        print(f"note: {line}")
    for line in report.problems:
        print(f"problem: {line}")
    print(f"verify {args.story_id}: {len(report.ok)} consistent, {len(report.repaired)} repaired, "
          f"{len(report.problems)} problems, {len(report.notes)} notes (provider {provider})", file=sys.stderr)
    return ExitCode.CHECK_FOUND_WORK if report.problems else ExitCode.OK


def cmd_pull(workspace: Workspace, args: argparse.Namespace) -> int:
    from .building import keeping

    session = workspace.session(args.story_id)
    try:
        report = keeping.pull(session)
    finally:
        session.close()
    for line in report.problems:
        print(f"problem: {line}")
    print(f"pull {args.story_id}: " + (", ".join(f"{n} {what}" for what, n in sorted(report.counts.items())) or
                                       "nothing recorded") + " (no provider was called)", file=sys.stderr)
    return ExitCode.FAILED if report.problems else ExitCode.OK


def cmd_push(workspace: Workspace, args: argparse.Namespace) -> int:
    from .building import keeping

    session = workspace.session(args.story_id)
    try:
        report = keeping.push(session)
    finally:
        session.close()
    for line in report.problems:
        print(f"problem: {line}")
    print(f"push {args.story_id} to {workspace.vault.remote_url}: {report.counts.get('sent', 0)} sent, "
          f"{report.counts.get('already there', 0)} already there", file=sys.stderr)
    return ExitCode.FAILED if report.problems else ExitCode.OK


def cmd_history(workspace: Workspace, args: argparse.Namespace) -> int:
    from .building import keeping
    from .store.build_state import Record, Version

    session = workspace.session(args.story_id)
    try:
        current, versions = keeping.history(session, args.task)
    finally:
        session.close()
    rows: list[tuple[str, Record | Version]] = (
        ([("current", current)] if current is not None else []) + [(str(v.version), v) for v in versions])
    if args.json:
        print(json.dumps([{"version": label, **item.to_row()} for label, item in rows], indent=2))
        return ExitCode.OK
    if not rows:
        print(f"{args.task}: not built yet", file=sys.stderr)
        return ExitCode.OK
    for label, item in rows:
        if isinstance(item, Version):
            record, number, verdict = item.record, item.version, (f", {item.verdict}" if item.verdict else "")
        else:
            record, number, verdict = item, item.version, ""
        cost = "" if record.cost is None else f", {record.cost:.2f} USD"
        print(f"{'*' if label == 'current' else ' '} {number:>3}  {record.output_sha256[:12]}  {record.built_at}  "
              f"{record.origin} by {record.built_by or '?'} with {record.provider} {record.model}{cost}{verdict}")
    print(f"{len(rows)} version(s); `storytree restore {args.story_id} {args.task} <version>` makes one current "
          "again (free)", file=sys.stderr)
    return ExitCode.OK


def cmd_restore(workspace: Workspace, args: argparse.Namespace) -> int:
    from .building import keeping

    session = workspace.session(args.story_id)
    try:
        line = keeping.restore(session, args.task, args.version, keep=args.keep)
    finally:
        session.close()
    print(line, file=sys.stderr)
    return ExitCode.OK


def cmd_gc(workspace: Workspace, args: argparse.Namespace) -> int:
    from .building import keeping

    settings = workspace.settings
    story_ids = workspace.store().list_story_ids()
    needed = keeping.needed_objects(workspace.state(), story_ids, settings.objects.keep_versions)
    objects = workspace.vault.objects()
    count, freed = keeping.collect_garbage(objects, needed, dry_run=args.dry_run)
    verb = "would free" if args.dry_run else "freed"
    print(f"gc: {verb} {count} local object(s), {freed / 2**20:.1f} MB ({len(needed)} needed by {len(story_ids)} "
          f"stories: current files and the newest {settings.objects.keep_versions} versions of each target)",
          file=sys.stderr)
    if not args.remote:
        return ExitCode.OK
    garbage = keeping.remote_garbage(workspace.vault, needed)
    total = sum(size for _, size in garbage)
    print(f"gc: the remote {workspace.vault.remote_url} holds {len(garbage)} object(s) nothing needs "
          f"({total / 2**20:.1f} MB)", file=sys.stderr)
    if args.dry_run or not garbage:
        return ExitCode.OK
    if not args.yes and not confirm(f"Delete them from {workspace.vault.remote_url}? Teammates' stories in other "
                                    "story stores may still need them. [y/N] "):
        print("gc: nothing deleted on the remote", file=sys.stderr)
        return ExitCode.OK
    remote = workspace.vault.remote()
    assert remote is not None
    for sha, _ in garbage:
        remote.delete(sha)
    print(f"gc: deleted {len(garbage)} object(s) on the remote", file=sys.stderr)
    return ExitCode.OK


def cmd_config(workspace: Workspace, args: argparse.Namespace) -> int:
    """The settings in effect, each with where its value came from (secrets masked)."""
    from .settings.explain import effective_settings

    rows = effective_settings(workspace.settings)
    if args.json:
        print(json.dumps([{"setting": row.name, "value": json.loads(row.shown) if row.shown != "(not set)" else None,
                           "source": row.source} for row in rows], indent=2))
        return ExitCode.OK
    width = max(len(row.name) for row in rows)
    for row in rows:
        print(f"{row.name:<{width}} = {row.shown}  # {row.source}")
    print(f"settings of {workspace.settings.root}: defaults < storytree.toml < environment < doit variables "
          "(storytree.toml.example lists every setting)", file=sys.stderr)
    return ExitCode.OK


def cmd_quota(workspace: Workspace, args: argparse.Namespace) -> int:
    """What the rate limiter learnt per model (a cache in the state folder), and `--reset MODEL` to forget it."""
    from .providers.rate_limit import RateLimiter

    settings = workspace.settings
    limiter = RateLimiter.from_settings(settings)
    try:
        rows = limiter.learnt()
        if args.reset:
            if not limiter.forget(args.reset):
                known = ", ".join(row["model"] for row in rows) or "none"
                raise InputError(f"nothing was learnt for {args.reset!r} (models learnt: {known}); "
                                 "`storytree quota` lists them.")
            print(f"quota {args.reset}: forgotten; its next call starts at [gemini] initial_rate_per_minute = "
                  f"{settings.gemini.initial_rate_per_minute:g}/min", file=sys.stderr)
            return ExitCode.OK
    finally:
        limiter.close()
    if not rows:
        print(f"quota: nothing learnt yet ({limiter.path} does not exist)", file=sys.stderr)
        return ExitCode.OK
    for row in rows:
        how = ("configured" if row["configured"] else "learnt, still growing (no 429 yet)" if row["slow_start"]
               else "learnt from 429s")
        pause = f", paused for {row['paused_seconds']:.0f} s" if row["paused_seconds"] >= 1 else ""
        print(f"{row['model']}: {row['per_minute']:.1f} calls/min ({how}); {row['day_count']} call(s) on "
              f"{row['day']} (Pacific){pause}")
    print("`storytree quota --reset MODEL` forgets a model's learnt rate (a configured limit in [gemini.rate_limits] "
          "always wins)")
    return ExitCode.OK


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise InputError("deleting remote objects needs a yes: answer at a terminal, or add --yes.")
    return input(question).strip().lower() in ("y", "yes")


def _only_story(settings: Settings) -> str:
    ids = sorted(p.stem for p in settings.manifests_dir.glob("*.yaml"))
    if len(ids) != 1:
        raise InputError(f"{len(ids)} manifests exist; pass --story <id>.")
    return ids[0]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is a refusal before anything started (argparse's own exit code 2 means something else
        here: core/exit_codes.py)."""
        self.print_usage(sys.stderr)
        self.exit(ExitCode.REFUSED, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="storytree", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("import", help="import a Supabase table export (JSON) into the story store")
    p.add_argument("file")
    p.add_argument("--new-ids", action="store_true",
                   help="give every scenelet and shot row of the file a new id (import a copy of a stored story "
                        "under a new story id; parent links and scenelet_ref follow)")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export", help="print one story as a Supabase table export (JSON)")
    p.add_argument("story_id")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("ingest-shots", help="turn Gemini shot-production responses into shots rows")
    p.add_argument("story_id")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("manifest", help="write manifests/<story-id>.yaml (or --check them)")
    p.add_argument("story_ids", nargs="*")
    p.add_argument("--check", action="store_true", help="exit 2 with a diff when a committed manifest drifted")
    p.set_defaults(func=cmd_manifest)
    p = sub.add_parser("prompt", help="print exactly what a target would send")
    p.add_argument("task")
    p.add_argument("--story")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_prompt)
    p = sub.add_parser("resubmit", help="clear an uncertain video submission so the next build pays again")
    p.add_argument("story_id")
    p.add_argument("task")
    p.set_defaults(func=cmd_resubmit)
    p = sub.add_parser("release", help="free a claim left by a worker that is gone (see the dry-run for claims)")
    p.add_argument("story_id")
    p.add_argument("task")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("review", help="approve or reject built assets (a video waits for its approved key frame when "
                                      "[review] key_frames = \"required\")")
    p.add_argument("verdict", choices=["approve", "reject", "list"])
    p.add_argument("story_id")
    p.add_argument("tasks", nargs="*", metavar="task",
                   help="targets, e.g. image:scenelet-1_1, or doit-style wildcards: 'image:scenelet-2_*' (not for list)")
    p.add_argument("--all", action="store_true", help="every built key frame nobody has reviewed yet")
    p.add_argument("--note", help="why it is rejected: becomes the director's note of the shot's next key frame")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.set_defaults(func=cmd_review)
    p = sub.add_parser("serve", help="serve apps/story-tree-ui/public/ (the review pages and assets) on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    p.add_argument("--read-only", action="store_true", help="show reviews, never change them (for sharing a screen)")
    p.add_argument("--verbose", action="store_true", help="log every request (by default: the start, each review "
                                                          "or restore, and errors)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("pull", help="make every current asset of a story present from the objects or the remote "
                                    "(no build, no provider)")
    p.add_argument("story_id")
    p.set_defaults(func=cmd_pull)
    p = sub.add_parser("push", help="send the objects the remote lacks (current files and kept versions)")
    p.add_argument("story_id")
    p.set_defaults(func=cmd_push)
    p = sub.add_parser("history", help="a target's current file and its earlier versions")
    p.add_argument("story_id")
    p.add_argument("task")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)
    p = sub.add_parser("restore", help="make an earlier version of a target current again (free)")
    p.add_argument("story_id")
    p.add_argument("task")
    p.add_argument("version", help="a version number (see `storytree history`) or a sha256 prefix")
    p.add_argument("--keep", action="store_true", help="accept it although it was made from other inputs")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("gc", help="free local objects no current file and no kept version needs")
    p.add_argument("--dry-run", action="store_true", help="only say what would be freed")
    p.add_argument("--remote", action="store_true", help="also on the remote (asks first)")
    p.add_argument("--yes", action="store_true", help="with --remote: do not ask")
    p.set_defaults(func=cmd_gc)
    p = sub.add_parser("config", help="the settings in effect and where each value came from (secrets masked)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("quota", help="what the rate limiter learnt per model; --reset MODEL forgets it")
    p.add_argument("--reset", metavar="MODEL", help="forget what was learnt for MODEL (it starts over)")
    p.set_defaults(func=cmd_quota)
    p = sub.add_parser("verify", help="check files, records, manifest and story database; repair DB paths")
    p.add_argument("story_id")
    p.add_argument("--no-repair", action="store_true", help="only report, write nothing")
    p.add_argument("--provider", help="judge staleness against this provider (default: settings)")
    p.set_defaults(func=cmd_verify)
    return parser


READ_ONLY_COMMANDS = {"export", "prompt", "history", "quota", "config"}


def reads_only(args: argparse.Namespace) -> bool:
    """Commands that change nothing: they never create the story database or its data folder."""
    return args.command in READ_ONLY_COMMANDS or (args.command == "verify" and args.no_repair) or (
        args.command == "review" and args.verdict == "list")


def resolve_story_ids(workspace: Workspace, args: argparse.Namespace) -> None:
    """Every story id a command takes may be a unique prefix of one (an ambiguous one lists the matches)."""
    for name in ("story_id", "story"):
        given = getattr(args, name, None)
        if given:
            setattr(args, name, workspace.resolve_story(given))
    if getattr(args, "story_ids", None):
        args.story_ids = [workspace.resolve_story(given) for given in args.story_ids]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    workspace: Workspace | None = None
    try:
        from .bootstrap import Workspace
        from .settings import load_settings

        workspace = Workspace(load_settings(), read_only=reads_only(args))
        resolve_story_ids(workspace, args)
        return args.func(workspace, args)
    except StorytreeError as exc:
        if args.debug:
            raise
        print(f"storytree: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `storytree export … | head`: the reader has gone; end quietly (and let no exit-time flush complain)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        print("storytree: interrupted (Ctrl-C)", file=sys.stderr)
        return ExitCode.INTERRUPTED
    finally:
        if workspace is not None:
            workspace.close()


if __name__ == "__main__":
    sys.exit(main())
