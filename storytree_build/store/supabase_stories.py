"""Supabase story store: the original project's tables, read and written through supabase-py (PostgREST).

Selected with `STORYTREE_STORE=supabase` plus `SUPABASE_URL` and `SUPABASE_SERVICE_ROLE_KEY`.

* Reads: plain `select` requests, paged (hosted projects cap responses at `max-rows`, 1000 by default).
  The three tables are read with three requests, so a snapshot is consistent per table, not across tables.
* Document paths: one call of the SQL function `set_story_json_path` (supabase/migrations/000012_*), a single
  UPDATE on the server, so 8 parallel writers into one story row lose nothing (storage notes §3).
* Shot paths: a single-column PATCH filtered on (story_id, scenelet_id, shot_index); PATCH only sets the
  columns it sends.
* Import: one call of the SQL function `import_story_rows` (supabase/migrations/000013_*, 000018_*): one
  transaction, asset paths a build wrote back are never erased by an export that has none, and a row whose id
  belongs to another story is refused (HTTP 409, PT409) instead of moved.

The adapter only uses `client.table(...)` and `client.rpc(...)`, so tests can hand it a real `supabase.Client`.
Every failure is turned into a ConfigError (fix the settings or the database setup) or a StoreError (the
server refused or could not be reached). The service key never appears in a message or a log line.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
from postgrest.exceptions import APIError
from postgrest.types import CountMethod

from ..core.errors import ConfigError, InputError, StoreError, collect
from ..core.redact import filter_http_logs, redact_url, scrub_userinfo
from ..core.story import StorySnapshot
from .ports import (ROW_TABLES, SCENELET_COLS, SHOT_COLS, STORY_COLS, JsonPath, RowOwner, check_document_column,
                    check_shot_column, foreign_row_problems)

if TYPE_CHECKING:  # the settings never import a store
    from ..settings import Settings

log = logging.getLogger(__name__)


TIME_COLS = {"created_at", "updated_at"}

RPC_SET_PATH = "set_story_json_path"
RPC_IMPORT = "import_story_rows"
PAGE_SIZE = 1000
DEFAULT_TIMEOUT = 30.0
MIGRATIONS = "supabase/migrations/*.sql"
RPC_MIGRATION = "supabase/migrations/000012_set_story_json_path.sql"
IMPORT_MIGRATION = "supabase/migrations/000013_import_story_rows.sql and 000018_import_per_story.sql"
FOREIGN_ROWS_CODE = "PT409"  # import_story_rows: a row id belongs to another story (000018)
ID_BATCH = 100  # uuids per `in.(...)` filter: keeps each request URL a few kB

AUTH_CODES = {"PGRST300", "PGRST301", "PGRST302", "401", "403"}
MISSING_TABLE_CODES = {"42P01", "PGRST205"}
MISSING_COLUMN_CODES = {"42703", "PGRST204"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _tls_context() -> Any:
    """One TLS context per process: loading the CA bundle costs ~0.2 s per httpx.Client otherwise."""
    return httpx.create_ssl_context()


def canonical_time(value: Any) -> Any:
    """PostgREST renders timestamptz like `…:43.12+00:00`; return Python's UTC isoformat (what the SQLite store
    writes), so a story exported from either store is byte-identical. Unparseable values pass through."""
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value).astimezone(timezone.utc).isoformat()
    except ValueError:
        return value


def _row(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    return {c: canonical_time(row.get(c)) if c in TIME_COLS else row.get(c) for c in columns}


def _shorten(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SupabaseStoryStore:
    """A StoryStore over a Supabase project (or any PostgREST serving the original tables)."""

    def __init__(self, client: Any, *, url: str = "SUPABASE_URL", secret: str | None = None,
                 http_client: httpx.Client | None = None, timeout: float | None = None,
                 statuses: threading.local | None = None):
        """`client` needs `.table(name)` and `.rpc(fn, params)` (a `supabase.Client`).

        `secret` is only used to scrub messages; `http_client` is closed by `close()`; `statuses.code` is the
        HTTP status of this thread's last response (set by an httpx hook; APIError does not carry it).
        """
        self._client = client
        self._url = url
        self._secret = secret or None
        self._http = http_client
        self._timeout = timeout
        self._statuses = statuses
        # Callers that never call close() (one-shot CLI commands) must not leak sockets.
        self._finalizer = weakref.finalize(self, http_client.close) if http_client is not None else None

    def __repr__(self) -> str:
        return f"SupabaseStoryStore(url={self._url!r})"

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT, retry: bool = True) -> SupabaseStoryStore:
        """Build the store from `Settings` (SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY). Makes no network call.

        `retry` keeps supabase-py's retries of idempotent reads on 503/520 and network errors (1, 2, 4 s).
        """
        from supabase import ClientOptions, create_client
        from supabase._sync.client import SupabaseException

        url = (settings.supabase_url or "").strip()
        shown = redact_url(url)  # what messages and logs say: never the URL's user-info
        filter_http_logs()  # httpx logs each request's full URL
        secret = settings.supabase_service_role_key
        key = secret.get_secret_value().strip() if secret is not None else ""
        problems = []
        if not url:
            problems.append("SUPABASE_URL is not set: set it to the project URL, e.g. https://<project-ref>.supabase.co")
        elif not re.match(r"^https?://[^/\s?#]+", url):
            problems.append(f"SUPABASE_URL {_shorten(shown, 80)!r} is not an http(s) URL: set it to the project URL, "
                            "e.g. https://<project-ref>.supabase.co")
        elif re.search(r"/rest/v1/?$", url):
            problems.append(f"SUPABASE_URL {shown!r} ends with /rest/v1: set it to the project URL without the API path "
                            "(the client adds /rest/v1 itself)")
        if not key:
            problems.append("SUPABASE_SERVICE_ROLE_KEY is not set: copy the service_role key from the Supabase "
                            "dashboard (Project Settings → API) into the environment")
        if problems:
            message = "The Supabase story store is selected (STORYTREE_STORE=supabase) but:\n" + "\n".join(
                f"  - {p}" for p in problems)
            raise ConfigError(message.replace(key, "[redacted]") if key else message)

        statuses = threading.local()

        def remember_status(response: httpx.Response) -> None:
            statuses.code = response.status_code

        http = httpx.Client(timeout=timeout, verify=_tls_context(), event_hooks={"response": [remember_status]})
        try:
            client = create_client(url, key, ClientOptions(
                httpx_client=http, postgrest_client_retry=retry, auto_refresh_token=False, persist_session=False))
        except SupabaseException as exc:
            http.close()
            raise ConfigError(_scrub(f"Cannot configure the Supabase client for SUPABASE_URL {shown!r}: {exc.message}. "
                                     "Check SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY.", key)) from None
        log.debug("Supabase story store at %s", shown)
        return cls(client, url=shown, secret=key, http_client=http, timeout=timeout, statuses=statuses)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the httpx client once
        self._http = None

    # -- error translation ---------------------------------------------------------------------
    def run(self, what: str, request: Any, on_api_error: Callable[[APIError], Exception | None] | None = None) -> Any:
        """Execute one request; translate every failure into ConfigError / StoreError naming what to fix."""
        if self._statuses is not None:
            self._statuses.code = None
        try:
            return request.execute()
        except APIError as exc:
            special = on_api_error(exc) if on_api_error else None
            raise self._scrubbed(special or self._api_error(what, exc)) from exc
        except httpx.TimeoutException as exc:
            limit = f" within {self._timeout:g} s" if self._timeout else ""
            raise self._scrubbed(StoreError(
                f"Could not {what}: Supabase at SUPABASE_URL {self._url} did not answer{limit} "
                f"({type(exc).__name__}). Check the network and the project's status, then retry.")) from exc
        except httpx.HTTPError as exc:
            raise self._scrubbed(StoreError(
                f"Could not {what}: cannot reach Supabase at SUPABASE_URL {self._url} "
                f"({type(exc).__name__}: {_shorten(exc, 160)}). Check SUPABASE_URL and that the project is running "
                "and reachable from this machine.")) from exc

    def rpc(self, what: str, function: str, params: dict[str, Any],
            on_api_error: Callable[[APIError], Exception | None] | None = None) -> Any:
        """Call one SQL function over PostgREST (one transaction on the server); its JSON result."""
        return self.run(what, self._client.rpc(function, params), on_api_error).data

    def _api_error(self, what: str, exc: APIError, probe: bool = True) -> Exception:
        status = getattr(self._statuses, "code", None) if self._statuses is not None else None
        code = str(exc.code or "") or (str(status) if status else "")
        message = _shorten(exc.message or "")
        detail = f"{code or 'no code'}: {message}" if message else code or "no details"
        lowered = message.lower()
        if code == "42501":
            return ConfigError(
                f"Could not {what}: permission denied ({detail}). SUPABASE_SERVICE_ROLE_KEY must be the "
                "service_role key, not the anon/publishable key; a self-hosted database needs the grants in "
                "supabase/migrations/000011_supabase_roles_and_grants.sql.")
        if code in AUTH_CODES or status in (401, 403) or "invalid api key" in lowered or "jwt" in lowered:
            return ConfigError(
                f"Could not {what}: Supabase at SUPABASE_URL {self._url} rejected SUPABASE_SERVICE_ROLE_KEY "
                f"(HTTP {status or 401}, {detail}). Set SUPABASE_SERVICE_ROLE_KEY to the service_role key of this "
                "project (Supabase dashboard → Project Settings → API).")
        if code in MISSING_TABLE_CODES:
            return ConfigError(
                f"Could not {what}: the story tables are missing from the database behind SUPABASE_URL "
                f"{self._url} ({detail}). Apply {MIGRATIONS} (Supabase SQL editor or `supabase db push`).")
        if code == "PGRST202":
            return ConfigError(
                f"Could not {what}: the SQL function public.{RPC_SET_PATH} is missing ({detail}). Apply "
                f"{RPC_MIGRATION} to the database behind SUPABASE_URL {self._url} (Supabase SQL editor or "
                "`supabase db push`); a self-hosted PostgREST then needs NOTIFY pgrst, 'reload schema'.")
        if code in MISSING_COLUMN_CODES:
            return ConfigError(
                f"Could not {what}: the database schema behind SUPABASE_URL {self._url} is out of date "
                f"({detail}). Apply {MIGRATIONS}.")
        if code == "PGRST106":
            return ConfigError(f"Could not {what}: the public schema is not exposed by the API ({detail}). "
                               "Add it to the project's exposed schemas (Project Settings → API).")
        if code == "404" or (status == 404 and not exc.code):
            # PostgREST answers a write to a missing table with a bare 404: ask a GET what is wrong.
            diagnosis = self._diagnose(what) if probe else None
            if diagnosis is not None:
                return diagnosis
            return ConfigError(
                f"Could not {what}: SUPABASE_URL {self._url} answered HTTP 404 with no Supabase API behind "
                f"/rest/v1 ({_shorten(exc.details or message or 'empty answer', 160)}). Set SUPABASE_URL to the project URL, e.g. "
                "https://<project-ref>.supabase.co.")
        extra = f" ({_shorten(exc.details, 200)})" if exc.details and code not in {"", "500", "502", "503"} else ""
        hint = f" Hint: {_shorten(exc.hint, 200)}" if exc.hint else ""
        return StoreError(f"Could not {what}: Supabase answered {detail}{extra}.{hint}")

    def _diagnose(self, what: str) -> Exception | None:
        try:
            self._client.table("stories").select("id").limit(1).execute()
        except APIError as exc:
            return self._api_error(what, exc, probe=False)
        except httpx.HTTPError:
            return None
        return ConfigError(f"Could not {what}: Supabase at SUPABASE_URL {self._url} answered HTTP 404 although the "
                           f"stories table exists; the database schema is incomplete. Apply {MIGRATIONS}.")

    def _scrubbed(self, error: Exception) -> Exception:
        text = str(error)
        cleaned = _scrub(text, self._secret)
        return type(error)(cleaned) if cleaned != text else error

    # -- reads ---------------------------------------------------------------------------------
    def select_all(self, what: str, table: str, columns: list[str], order: list[str],
                    filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every matching row, page by page; stops at the exact count the server reports."""
        rows: list[dict[str, Any]] = []
        total: int | None = None
        while total is None or len(rows) < total:
            query = self._client.table(table).select(",".join(columns), count=CountMethod.exact if total is None else None)
            for column, value in (filters or {}).items():
                query = query.in_(column, value) if isinstance(value, list) else query.eq(column, value)
            for column in order:
                query = query.order(column)
            response = self.run(what, query.range(len(rows), len(rows) + PAGE_SIZE - 1))
            if total is None:
                total = response.count if response.count is not None else len(response.data)
            if not response.data:
                break
            rows.extend(response.data)
        return rows

    def list_story_ids(self) -> list[str]:
        rows = self.select_all("list the stories", "stories", ["id"], ["created_at", "id"])
        return [row["id"] for row in rows]

    def fingerprint(self, story_id: str) -> str:
        """Computed by the database (supabase/migrations/000015): one small call instead of the whole story."""
        if not _is_uuid(story_id):
            return ""

        def missing(exc: APIError) -> Exception | None:
            if exc.code in ("PGRST202", "42883"):
                return ConfigError("The Supabase database behind SUPABASE_URL lacks storytree_story_fingerprint; "
                                   "apply supabase/migrations/000015_storytree_reviews.sql.")
            return None

        return str(self.rpc(f"read the fingerprint of story {story_id}", "storytree_story_fingerprint",
                            {"p_story_id": story_id}, missing) or "")

    def manifest_fingerprint(self, story_id: str) -> str:
        """Computed by the database (supabase/migrations/000019): one small call, as `fingerprint`."""
        if not _is_uuid(story_id):
            return ""

        def missing(exc: APIError) -> Exception | None:
            if exc.code in ("PGRST202", "42883"):
                return ConfigError("The Supabase database behind SUPABASE_URL lacks storytree_manifest_fingerprint; "
                                   "apply supabase/migrations/000019_storytree_manifest_fingerprint.sql.")
            return None

        return str(self.rpc(f"read the manifest fingerprint of story {story_id}", "storytree_manifest_fingerprint",
                            {"p_story_id": story_id}, missing) or "")

    def load_story(self, story_id: str) -> StorySnapshot:
        what = f"read story {story_id}"
        found = self.select_all(what, "stories", STORY_COLS, ["id"], {"id": story_id}) if _is_uuid(story_id) else []
        if not found:
            known = ", ".join(self.list_story_ids()) or "none"
            raise InputError(f"Story {story_id} does not exist in Supabase at {self._url} (known stories: {known}). "
                             "Import it with `storytree import FILE`.")
        story = _row(found[0], STORY_COLS)
        scenelets = self.select_all(what, "scenelets", SCENELET_COLS, ["created_at", "id"], {"story_id": story_id})
        shots = self.select_all(what, "shots", SHOT_COLS,
                                 ["scenelet_sequence", "scenelet_ref", "shot_index", "id"], {"story_id": story_id})
        return StorySnapshot(
            story=story,
            scenelets=[_row(row, SCENELET_COLS) for row in scenelets],
            shots=[_row(row, SHOT_COLS) for row in shots],
        )

    def row_owners(self, table: str, row_ids: list[str]) -> dict[str, RowOwner]:
        if table not in ROW_TABLES:
            raise ValueError(f"{table!r} is not a row table ({', '.join(ROW_TABLES)})")
        # Postgres answers uuids in lower case: key the answer by the ids as asked. Other ids cannot be stored here.
        asked = {str(uuid.UUID(row_id)): row_id for row_id in row_ids if _is_uuid(row_id)}
        unique = sorted(asked)
        story_of: dict[str, str] = {}
        for start in range(0, len(unique), ID_BATCH):
            for row in self.select_all(f"look up the stories of {table} rows", table, ["id", "story_id"], ["id"],
                                       {"id": unique[start:start + ID_BATCH]}):
                story_of[asked.get(row["id"], row["id"])] = row["story_id"]
        names = {row["id"]: row["display_name"]
                 for row in self.select_all("look up story names", "stories", ["id", "display_name"], ["id"],
                                            {"id": sorted(set(story_of.values()))})} if story_of else {}
        return {row_id: RowOwner(story_id, names.get(story_id, "")) for row_id, story_id in story_of.items()}

    # -- writes --------------------------------------------------------------------------------
    def import_rows(self, export: dict[str, list[dict[str, Any]]]) -> None:
        """One call of the SQL function `import_story_rows` (supabase/migrations/000013_*): every row in one
        transaction, stored asset paths kept when the incoming rows have none (as in the SQLite store)."""
        stamp = now_iso()
        stories = []
        for row in export.get("stories", []):
            values = {c: row.get(c) for c in STORY_COLS}
            values["created_at"] = values["created_at"] or stamp
            values["updated_at"] = values["updated_at"] or stamp
            stories.append(values)
        scenelets = []
        for row in export.get("scenelets", []):
            values = {c: row.get(c) for c in SCENELET_COLS}
            values["is_branch_point"] = bool(values["is_branch_point"])
            values["is_terminal_node"] = bool(values["is_terminal_node"])
            values["created_at"] = values["created_at"] or stamp
            scenelets.append(values)
        shots = []
        for row in export.get("shots", []):
            values = {c: row.get(c) for c in SHOT_COLS}
            values["created_at"] = values["created_at"] or stamp
            values["updated_at"] = values["updated_at"] or stamp
            shots.append(values)

        sent = {"stories": stories, "scenelets": scenelets, "shots": shots}

        def translate(exc: APIError) -> Exception | None:
            if exc.code == "PGRST202":
                return ConfigError(
                    f"Could not import: the SQL function public.{RPC_IMPORT} is missing. Apply {IMPORT_MIGRATION} to "
                    f"the database behind SUPABASE_URL {self._url} (Supabase SQL editor or `supabase db push`); a "
                    "self-hosted PostgREST then needs NOTIFY pgrst, 'reload schema'.")
            if exc.code == FOREIGN_ROWS_CODE:
                return foreign_rows_error(sent, exc)
            return None

        params = {"p_stories": stories, "p_scenelets": scenelets, "p_shots": shots}
        self.run(f"import {len(stories)} stories, {len(scenelets)} scenelets and {len(shots)} shots",
                  self._client.rpc(RPC_IMPORT, params), translate)

    def set_document_path(self, story_id: str, column: str, path: JsonPath, value: Any) -> None:
        check_document_column(column)
        if not path:
            raise ValueError("a JSON path needs at least one segment")
        for segment in path:
            if isinstance(segment, bool) or not isinstance(segment, (str, int)):
                raise ValueError(f"JSON path segment {segment!r} is neither a key (str) nor an index (int)")
        shown = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)
        if not _is_uuid(story_id):
            raise StoreError(f"Story {story_id} does not exist; cannot write {column}{shown}.")

        def translate(exc: APIError) -> Exception | None:
            if exc.code == "PT404":
                return StoreError(f"Story {story_id} does not exist in Supabase at {self._url}; "
                                  f"cannot write {column}{shown}.")
            if exc.code in ("22023", "22P02"):
                return StoreError(f"Could not set {column}{shown} for story {story_id}: the path does not exist in "
                                  f"the stored document ({_shorten(exc.message)}); regenerate the manifest.")
            return None

        params = {"p_story_id": story_id, "p_column": column, "p_path": [str(s) for s in path], "p_value": value}
        log.debug("set %s%s of story %s", column, shown, story_id)
        self.run(f"write {column}{shown} of story {story_id}", self._client.rpc(RPC_SET_PATH, params), translate)

    def set_shot_path(self, story_id: str, scenelet_id: str, shot_index: int, column: str, value: str | None) -> None:
        check_shot_column(column)
        missing = StoreError(f"Shot {scenelet_id}#{shot_index} of story {story_id} not found; cannot write {column}.")
        if not _is_uuid(story_id):
            raise missing
        request = (self._client.table("shots").update({column: value or None})
                   .eq("story_id", story_id).eq("scenelet_id", scenelet_id).eq("shot_index", shot_index)
                   .select("id"))
        log.debug("set %s of shot %s#%s of story %s", column, scenelet_id, shot_index, story_id)
        response = self.run(f"write {column} of shot {scenelet_id}#{shot_index} of story {story_id}", request)
        if len(response.data) != 1:
            raise missing


def foreign_rows_error(sent: dict[str, list[dict[str, Any]]], exc: APIError) -> InputError:
    """The function's refusal (its detail lists the rows of other stories as JSON) as the SQLite store words it."""
    # The detail names rows by canonical uuid; key them by the ids as sent.
    sent_ids = {(table, str(uuid.UUID(str(row["id"])))): str(row["id"])
                for table in ROW_TABLES for row in sent.get(table, []) if _is_uuid(row.get("id"))}
    try:
        listed = json.loads(exc.details or "[]")
        owners = {(row["table"], sent_ids.get((row["table"], row["id"]), row["id"])):
                  RowOwner(row["story_id"], row["display_name"]) for row in listed}
    except (TypeError, ValueError, KeyError):
        owners = {}
    problems = foreign_row_problems(sent, owners)
    if not problems:  # an answer this version cannot read: still refused, and said so
        problems = [f"the database refused rows that belong to another story ({_shorten(exc.details, 200)}); "
                    "give the copy fresh row ids (`storytree import --new-ids FILE`)"]
    try:
        collect(problems, "nothing was imported")  # raises: `problems` is never empty here
    except InputError as error:
        return error
    return InputError("nothing was imported: " + "; ".join(problems))


def _scrub(text: str, secret: str | None) -> str:
    """The service key and any URL's user-info out of a message (a server or httpx text may quote SUPABASE_URL)."""
    return scrub_userinfo(text.replace(secret, "[redacted]") if secret else text)
