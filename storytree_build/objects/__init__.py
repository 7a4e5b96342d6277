"""Content-addressed objects: every paid asset stored once by its sha256, locally and optionally on a shared remote.

Where objects live
    `<root>/sha256/<2 hex>/<62 hex>` (root: `.storytree-data/objects`), read-only (0444), in a folder only this user
    can read (0700). Temp files go to `<root>/tmp` and are renamed into place after an fsync; an object is either
    complete or absent. `LocalObjects` (local.py) adds files or bytes (hashing while copying, refusing bytes that do
    not hash to the expected sha256), verifies, lists, removes and *materializes* an object at an asset path.

Copy vs hardlink
    `materialize` writes the asset atomically (temp file beside it, fsync, rename), as a reflink (copy-on-write clone,
    Linux FICLONE on btrfs/XFS) where the filesystem has one, else as a plain copy, so an in-place edit of the asset
    never changes the object: the default, as DVC's `reflink,copy`. The asset gets the usual mode (0666 - umask).
    `link="hardlink"` opts into no second copy: the asset becomes another name of the object's read-only inode, and
    a program that rewrites the asset in place (root ignores the read-only bit) corrupts the object too; `verify`
    reports that and adding the genuine bytes repairs it. Across filesystems a hardlink falls back to a copy.

Remote URL forms (remote.py, `open_remote`)
    `file:///absolute/folder`: a shared or network folder. `s3://bucket/prefix`: AWS S3 or any S3-compatible service
    (Supabase Storage's S3 endpoint `https://<ref>.storage.supabase.co/storage/v1/s3`, Cloudflare R2, MinIO, GCS
    interop), configured by the standard AWS_* variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or explicit options; `http://` endpoints are allowed for local servers.
    The remote uses the local key layout under its prefix. Errors are typed (errors.py) and never carry credentials.

This package is loaded only when objects are needed (no-op builds never import it); the remote side loads obstore
only when a remote is opened. Names are importable from here lazily, e.g. `from storytree_build.objects import
LocalObjects, open_remote`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {"LocalObjects": ".local", "Remote": ".remote", "ObstoreRemote": ".remote", "Transfer": ".remote",
            "open_remote": ".remote"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
