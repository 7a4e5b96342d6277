"""Download-only mode: fetch an already generated video from its link into one shot's target.

`doit video:<scenelet-id>_<n> --download-link=URL` calls no model. The provider checks that the link
points at its own API host (the key is never sent anywhere else) before downloading.
"""

from __future__ import annotations

import logging

from .build import BuildContext, BuildOutcome
from .errors import InputError
from .providers import VideoStatus

log = logging.getLogger("storytree")


def download_from_link(ctx: BuildContext, task: str, link: str) -> BuildOutcome:
    target = ctx.target(task)
    if target.kind != "video":
        raise InputError(f"--download-link applies to one shot video (video:<scenelet-id>_<n>), not {task}.")
    link = link.strip()
    if not link:
        raise InputError(f"{task}: --download-link needs a URL.")
    with ctx.target_lock(task):
        inputs = ctx.checker.current_inputs(target)
        if inputs is None:
            missing = [r.path for r in target.references if ctx.checker.file_hash(r.path) is None]
            raise InputError(f"{task}: build its references first ({', '.join(missing)}); the record of a downloaded "
                             "video holds their hashes.")
        log.info("%s: downloading %s (no model call)", task, link)
        ctx.download(target, VideoStatus(done=True, uri=link))
        ctx._record(target, inputs)
        ctx.publish(target)
        return ctx._done(BuildOutcome(task, "downloaded", target.output))
