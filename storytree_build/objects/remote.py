"""A shared remote for objects: a small port (`Remote`) and its implementation on obstore, for two URL forms.

    file:///abs/path          a shared or network folder (obstore LocalStore; the folder is created)
    s3://bucket/prefix        AWS S3 and every S3-compatible service (Supabase Storage's S3 endpoint, Cloudflare R2,
                              MinIO, GCS interop): obstore S3Store, path-style requests

Keys are `<prefix>/sha256/<2 hex>/<62 hex>`, the local layout. For s3:// the endpoint, region and credentials come
from `options` (keys below) or else from `env` (default: the process environment): AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL / AWS_ENDPOINT, AWS_REGION / AWS_DEFAULT_REGION (default us-east-1), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ALLOW_HTTP. An `http://` endpoint (a local server) is allowed. obstore
itself also reads the process's AWS_* variables for anything not given explicitly.

Credentials are never part of the URL (user-info is refused), of `Remote.url`, of a repr or of an error message.
Every client call has a connect timeout (5 s), a request timeout (60 s) and a bounded retry (2 retries within 20 s);
`options` can change them. Downloads stream to a temp file beside the destination, hashed on the way, and are
renamed into place only when the hash matches the key.
"""

from __future__ import annotations

import builtins

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable
from urllib.parse import unquote, urlsplit

from ..core.errors import ConfigError, StorytreeError
from ..core.redact import redact_url
from ..files.atomic import replacing
from . import faults
from .errors import ObjectCorrupt, ObjectNotFound, ObjectStoreFault, RemoteError, RemoteUnreachable, short
from .keys import check_sha256, hash_file, relative_key, sha256_of_key
from .placing import describe, fsync_folder

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

URL_FORMS = "file:///absolute/folder or s3://bucket/prefix"
S3_OPTIONS = {"endpoint", "region", "access_key_id", "secret_access_key", "session_token", "allow_http",
              "virtual_hosted_style_request", "conditional_put"}
CLIENT_OPTIONS = {"connect_timeout": 5.0, "timeout": 60.0, "max_retries": 2.0, "retry_timeout": 20.0}
SECRET_OPTIONS = ("access_key_id", "secret_access_key", "session_token")
FEW = 8  # up to this many ids, `missing` asks per object; above it, one listing is cheaper
# Downloads take the body as it arrives: larger minimum chunks make obstore re-buffer (measured on 100 x 2 MB: 1 MiB
# chunks cost ~35 % more CPU than 64 KiB ones; 10 MiB, its default, twice as much).
STREAM_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Transfer:
    """One object of a `get_many` / `put_many`: `error` is None when it arrived."""

    sha256: str
    path: Path
    error: StorytreeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Remote(Protocol):
    url: str  # display form, no credentials

    def has(self, sha256: str) -> bool: ...
    def put(self, sha256: str, src: Path, *, overwrite: bool = False) -> None: ...
    def get(self, sha256: str, dest: Path) -> None: ...
    def missing(self, shas: Iterable[str]) -> set[str]: ...
    def delete(self, sha256: str) -> None: ...
    def list(self) -> Iterator[tuple[str, int]]: ...
    def get_many(self, pairs: Iterable[tuple[str, Path]], max_workers: int = 8) -> builtins.list[Transfer]: ...
    def put_many(self, pairs: Iterable[tuple[str, Path]], max_workers: int = 8) -> builtins.list[Transfer]: ...


class ObstoreRemote:
    """`Remote` over any obstore store; `open_remote` builds one from a URL."""

    def __init__(self, store: Any, url: str, *, bucket: str = "", folder: Path | None = None,
                 secrets: Iterable[str] = ()):
        self._store = store
        self.url = url
        self._bucket = bucket
        self._folder = folder  # file:// remotes: where keys live, to fsync what was put
        self._secrets = tuple(s for s in secrets if s)
        self._conditional = True  # cleared when the service answers that it has no conditional put

    def __repr__(self) -> str:
        return f"ObstoreRemote({self.url!r})"

    # -- one object ---------------------------------------------------------------------------------------------
    def has(self, sha256: str) -> bool:
        import obstore

        try:
            obstore.head(self._store, relative_key(sha256))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._fault(exc, "check", sha256) from None
        return True

    def put(self, sha256: str, src: Path, *, overwrite: bool = False) -> None:
        """Upload the local object file `src` under its key. Its bytes are checked first (a damaged local object is
        never uploaded: ObjectCorrupt). A key already there means done, since keys are content addresses, unless
        its size differs (a damaged upload), which is overwritten; `overwrite=True` always replaces."""
        import obstore
        import obstore.exceptions as oe

        key = relative_key(sha256)
        try:
            actual, size = hash_file(src), os.stat(src).st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"object {short(sha256)}: {src} is missing; nothing to upload to {self.url}",
                                 sha256=sha256) from None
        except OSError as exc:
            raise ObjectStoreFault(f"object {short(sha256)}: cannot read {src} ({describe(exc)})") from None
        if actual != sha256:
            raise ObjectCorrupt(f"object {short(sha256)}: {src} hashes to {short(actual)}; not uploaded to "
                                f"{self.url}", sha256=sha256, actual_sha256=actual)
        try:
            if overwrite or not self._conditional:
                obstore.put(self._store, key, Path(src))
            else:
                try:
                    obstore.put(self._store, key, Path(src), mode="create")
                except oe.AlreadyExistsError:
                    if obstore.head(self._store, key)["size"] == size:
                        return
                    obstore.put(self._store, key, Path(src))
                except Exception as exc:
                    if not _no_conditional_put(exc):
                        raise
                    self._conditional = False  # e.g. Supabase: a plain put is as good for a content address
                    obstore.put(self._store, key, Path(src))
        except Exception as exc:
            raise self._fault(exc, "upload", sha256) from None
        if self._folder is not None:
            _fsync_file(self._folder / key)

    def get(self, sha256: str, dest: Path) -> None:
        """Stream the object to a temp file beside `dest`, hashing it; rename it to `dest` only when the hash is
        the key's. Any failure (RemoteNotFound, RemoteCorrupt, RemoteUnreachable...) leaves `dest` as it was."""
        key = relative_key(sha256)
        dest = Path(dest)
        try:
            with replacing(dest) as tmp, open(tmp, "wb") as out:
                digest = hashlib.sha256()
                for chunk in self._chunks(key, sha256):
                    digest.update(chunk)
                    out.write(chunk)
                if (actual := digest.hexdigest()) != sha256:
                    raise faults.corrupt(url=self.url, sha256=sha256, actual=actual)
        except OSError as exc:
            raise ObjectStoreFault(f"object {short(sha256)} from {self.url}: cannot write {dest} ({describe(exc)});"
                                   " nothing was replaced. Make the folder writable (or free space).") from None

    def _chunks(self, key: str, sha256: str) -> Iterator[Any]:
        """The object's bytes as obstore streams them; obstore's errors (also mid-stream) become RemoteErrors."""
        import obstore

        try:
            stream = obstore.get(self._store, key).stream(min_chunk_size=STREAM_CHUNK)
        except Exception as exc:
            raise self._fault(exc, "download", sha256) from None
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except Exception as exc:
                raise self._fault(exc, "download", sha256) from None
            yield chunk

    def delete(self, sha256: str) -> None:
        import obstore

        try:
            obstore.delete(self._store, relative_key(sha256))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._fault(exc, "delete", sha256) from None

    # -- many objects -------------------------------------------------------------------------------------------
    def list(self) -> Iterator[tuple[str, int]]:
        """(sha256, size) of every object under the prefix; other keys are ignored."""
        import obstore

        try:
            for batch in obstore.list(self._store, prefix="sha256", chunk_size=1000):
                for meta in batch:
                    if sha256 := sha256_of_key(meta["path"]):
                        yield sha256, meta["size"]
        except Exception as exc:
            raise self._fault(exc, "list") from None

    def missing(self, shas: Iterable[str]) -> set[str]:
        """The ids of `shas` the remote lacks: a check per object for a few, one listing for many."""
        wanted = {check_sha256(s) for s in shas}
        if len(wanted) <= FEW:
            return {s for s in wanted if not self.has(s)}
        present = {sha256 for sha256, _ in self.list()}
        return wanted - present

    def get_many(self, pairs: Iterable[tuple[str, Path]], max_workers: int = 8) -> builtins.list[Transfer]:
        """Download concurrently; one Transfer per pair, in order. Once the remote is found unreachable, the
        transfers not started yet fail at once with that error instead of waiting out their own timeouts."""
        return _each(self.get, list(pairs), max_workers)

    def put_many(self, pairs: Iterable[tuple[str, Path]], max_workers: int = 8) -> builtins.list[Transfer]:
        """Upload concurrently (sha256, local object file); as `get_many`."""
        return _each(self.put, list(pairs), max_workers)

    def _fault(self, exc: BaseException, action: str, sha256: str = "") -> RemoteError:
        return faults.translate(exc, url=self.url, action=action, sha256=sha256, bucket=self._bucket,
                                secrets=self._secrets)


def _each(action: Callable[[str, Path], None], pairs: list[tuple[str, Path]], max_workers: int) -> builtins.list[Transfer]:
    down: list[RemoteUnreachable] = []
    lock = threading.Lock()

    def one(pair: tuple[str, Path]) -> Transfer:
        sha256, path = pair
        if down:
            first = down[0]
            return Transfer(sha256, Path(path), RemoteUnreachable(
                f"object {short(sha256)}: not tried, remote {first.remote_url} is unreachable ({first})",
                remote_url=first.remote_url, sha256=sha256))
        try:
            action(sha256, Path(path))
        except StorytreeError as exc:
            if isinstance(exc, RemoteUnreachable):
                with lock:
                    down.append(exc)
            return Transfer(sha256, Path(path), exc)
        return Transfer(sha256, Path(path))

    if not pairs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pairs))),
                            thread_name_prefix="storytree-objects") as pool:
        return list(pool.map(one, pairs))


def _no_conditional_put(exc: BaseException) -> bool:
    """The service does not implement If-None-Match on PUT (501 NotImplemented, or obstore's NotSupported)."""
    import obstore.exceptions as oe

    text = str(exc)
    return isinstance(exc, oe.NotSupportedError) or "status code: 501" in text or "<Code>NotImplemented" in text


def _fsync_file(path: Path) -> None:
    """A put into a shared folder is as durable as our own writes (obstore renames but does not fsync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_folder(path.parent)


# -- opening ------------------------------------------------------------------------------------------------------
def open_remote(url: str, *, options: Mapping[str, str] | None = None,
                env: Mapping[str, str] | None = None) -> ObstoreRemote:
    """The remote a URL names: `file:///abs/path` or `s3://bucket/prefix`; ConfigError for anything else.
    `options`: S3 settings (endpoint, region, access_key_id, secret_access_key, session_token, allow_http,
    virtual_hosted_style_request, conditional_put) and client limits in seconds (connect_timeout, timeout,
    retry_timeout) or a count (max_retries)."""
    options = dict(options or {})
    env = os.environ if env is None else env
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"remote url {shown!r}: {exc}; expected {URL_FORMS}") from None
    if "@" in parts.netloc:
        raise ConfigError(f"remote url {shown!r}: credentials in the URL are not accepted (the URL is shown in "
                          "output and may be committed); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
    unknown = sorted(set(options) - S3_OPTIONS - set(CLIENT_OPTIONS))
    if unknown:
        raise ConfigError(f"remote {shown}: unknown option(s) {', '.join(unknown)}; accepted: "
                          f"{', '.join(sorted(S3_OPTIONS | set(CLIENT_OPTIONS)))}")
    client, retry = _limits(options, shown)
    if parts.scheme == "file":
        return _file_remote(parts.netloc, parts.path, shown, options)
    if parts.scheme in ("s3", "s3a"):
        return _s3_remote(parts.netloc, parts.path, options, env, client, retry)
    raise ConfigError(f"remote url {shown!r} is not supported; expected {URL_FORMS} (S3-compatible services such "
                      "as Supabase Storage, R2 or MinIO use s3:// with AWS_ENDPOINT_URL)")


def _file_remote(host: str, raw_path: str, shown: str, options: Mapping[str, str]) -> ObstoreRemote:
    from obstore.store import LocalStore

    s3_only = sorted(set(options) & S3_OPTIONS)
    if s3_only:
        raise ConfigError(f"remote {shown}: option(s) {', '.join(s3_only)} apply to s3:// remotes only")
    folder = Path(unquote(raw_path))
    if host not in ("", "localhost") or not folder.is_absolute() or raw_path in ("", "/"):
        raise ConfigError(f"remote url {shown!r}: a folder remote needs an absolute path, e.g. "
                          "file:///mnt/team/storytree-objects")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        store = LocalStore(folder)
    except OSError as exc:
        raise ConfigError(f"remote {shown}: the folder {folder} cannot be created ({describe(exc)})") from None
    return ObstoreRemote(store, f"file://{folder}", folder=folder)


def _s3_remote(bucket: str, raw_path: str, options: Mapping[str, str], env: Mapping[str, str],
               client: dict[str, Any], retry: dict[str, Any]) -> ObstoreRemote:
    from obstore.store import S3Store

    prefix = raw_path.strip("/")
    shown = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if not bucket:
        raise ConfigError(f"remote url {shown!r}: no bucket; expected s3://bucket/prefix")
    config: dict[str, Any] = {key: value for key, value in options.items() if key in S3_OPTIONS and key != "allow_http"}
    for key, names in (("endpoint", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")),
                       ("region", ("AWS_REGION", "AWS_DEFAULT_REGION")),
                       ("access_key_id", ("AWS_ACCESS_KEY_ID",)), ("secret_access_key", ("AWS_SECRET_ACCESS_KEY",)),
                       ("session_token", ("AWS_SESSION_TOKEN",))):
        if key not in config and (value := next((env[n] for n in names if env.get(n)), None)):
            config[key] = value
    config.setdefault("region", "us-east-1")
    # path style unless asked otherwise: what S3-compatible services (Supabase, MinIO, local servers) need
    config["virtual_hosted_style_request"] = _truthy(config.get("virtual_hosted_style_request", ""))
    allow_http = options.get("allow_http", env.get("AWS_ALLOW_HTTP", ""))
    client["allow_http"] = _truthy(allow_http) or str(config.get("endpoint", "")).startswith("http://")
    secrets = [config[k] for k in SECRET_OPTIONS if config.get(k)]
    try:
        # the keys were checked against S3_OPTIONS and _limits above; obstore's TypedDicts say the same
        store = S3Store(bucket, prefix=prefix or None, config=cast("S3Config", config),
                        client_options=cast("ClientConfig", client), retry_config=cast("RetryConfig", retry))
    except Exception as exc:
        raise ConfigError(f"remote {shown}: cannot be opened ({faults.detail(exc, secrets)}); check the endpoint, "
                          "region and credentials (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, "
                          "AWS_SECRET_ACCESS_KEY)") from None
    return ObstoreRemote(store, shown, bucket=bucket, secrets=secrets)


def _limits(options: Mapping[str, str], shown: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """obstore's client and retry settings from the defaults and `options` (seconds; max_retries a count)."""
    values: dict[str, float] = {}
    for key, default in CLIENT_OPTIONS.items():
        raw = options.get(key, default)
        try:
            values[key] = float(str(raw).strip().removesuffix("s"))
            if values[key] < 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"remote {shown}: option {key} = {raw!r} must be a number of "
                              f"{'retries' if key == 'max_retries' else 'seconds'} (>= 0)") from None
    client = {"connect_timeout": timedelta(seconds=values["connect_timeout"]),
              "timeout": timedelta(seconds=values["timeout"])}
    retry = {"max_retries": int(values["max_retries"]), "retry_timeout": timedelta(seconds=values["retry_timeout"]),
             "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2}}
    return client, retry


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")

