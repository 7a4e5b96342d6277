"""What the settings are: one `Settings` model and its sections (`[gemini]`, `[storage]`, `[build]`, `[review]`),
with every name, default and limit. Where the values come from is `sources.py`; how a bad one is told, `problems.py`.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..core.generation import GenerationSettings
from ..core.pricing import PriceTable

ASSETS_REL = Path("apps/story-tree-ui/public/generated")


RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


class RateLimit(BaseModel):
    """A model's known request limit, written `"10/min"`, `"2/s"`, `"100/hour"`, `"500/day"` or `"10/min, 500/day"`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    per_second: float | None = Field(None, gt=0)
    per_day: int | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parsed: dict[str, float] = {}
        for part in (p.strip() for p in value.split(",") if p.strip()):
            match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*/\s*([a-z]+)", part.lower())
            unit = match[2] if match else ""
            if match is None or (unit not in RATE_UNITS and unit not in ("d", "day")) or float(match[1]) <= 0:
                raise ValueError(f"{value!r}: write a count per unit, e.g. \"10/min\", \"2/s\", \"100/hour\", "
                                 "\"500/day\" or \"10/min, 500/day\"")
            if unit in ("d", "day"):
                parsed["per_day"] = max(1, int(float(match[1])))
            else:
                parsed["per_second"] = float(match[1]) / RATE_UNITS[unit]
        return parsed


class GeminiSettings(BaseModel):
    """Retry, timeout, deadline and concurrency numbers of the Gemini provider (`[gemini]` in storytree.toml).

    Retries are ours (the SDK's are off): full-jitter exponential backoff on 408/429/5xx, timeouts and
    connection errors, honouring the server's RetryInfo delay; a per-call timeout is always set and every
    target has a deadline across all its attempts.
    """

    model_config = ConfigDict(extra="forbid")
    api_version: str = "v1beta"
    timeout_seconds: float = Field(180.0, gt=0)  # per HTTP call; never unset (the SDK default is "forever")
    deadline_seconds: float = Field(900.0, gt=0)  # per target, across all attempts and waits
    max_attempts: int = Field(4, ge=1)  # calls per target for retryable HTTP/transport failures
    no_image_retries: int = Field(2, ge=0, le=2)  # extra calls when the model answered without an image
    backoff_base_seconds: float = Field(2.0, ge=0)
    backoff_cap_seconds: float = Field(60.0, ge=0)
    rate_limit_base_seconds: float = Field(10.0, ge=0)  # 429 without a RetryInfo delay
    rate_limit_cap_seconds: float = Field(120.0, ge=0)
    max_concurrency: int = Field(4, ge=1)  # image calls in flight per model id, per process
    model_concurrency: dict[str, int] = Field(default_factory=dict)  # per-model overrides of max_concurrency
    # Models that accept `image_config.image_size` (fnmatch patterns); others get the aspect ratio only.
    image_size_models: list[str] = Field(default_factory=lambda: ["gemini-3*-image*", "gemini-nano-banana*"])
    # Known request limits per model ([gemini.rate_limits] "gemini-3.1-flash-image" = "10/min, 500/day"): never
    # exceeded, and a per-day count stops the run before Google's daily quota. Unknown limits are learnt.
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    initial_rate_per_minute: float = Field(60.0, gt=0)  # where learning starts for a model without a known limit
    quota_wait_minutes: float = Field(30.0, gt=0)  # a model making no progress this long fails the calls waiting


_IMAGE_MB: dict[str, float] = {"512": 4, "1K": 16, "2K": 48, "4K": 128, "*": 48}
_VIDEO_MB: dict[str, float] = {"720p": 100, "1080p": 150, "4k": 400, "*": 400}


class StorageSettings(BaseModel):
    """Space a paid result needs before it is paid for (`[storage]` in storytree.toml): an upper bound per output and
    headroom that must stay free. Bounds are generous on purpose; a build refuses only when even they do not fit."""

    model_config = ConfigDict(extra="forbid")
    headroom_mb: float = Field(64.0, ge=0)
    image_mb: dict[str, float] = Field(default_factory=_IMAGE_MB.copy)  # upper bound per image size
    video_mb: dict[str, float] = Field(default_factory=_VIDEO_MB.copy)  # per video resolution

    def bound_bytes(self, units: dict[str, Any]) -> int:
        """Upper bound of one output's size, from its manifest cost units."""
        if "video_seconds" in units:
            table, tier = self.video_mb, str(units.get("resolution"))
        else:
            table, tier = self.image_mb, str(units.get("image_size"))
        return int(table.get(tier, table.get("*", 0)) * 1024 * 1024)


class BuildSettings(BaseModel):
    """How builds share work (`[build]` in storytree.toml)."""

    model_config = ConfigDict(extra="forbid")
    # A file at a target path that the story database points at, without a record, is recorded instead of
    # regenerated (the original system's "skip if exists"). false: no record means rebuild.
    adopt_existing: bool = True
    claim_lease_seconds: float = Field(120.0, gt=0)  # how long a claim lives without being renewed
    claim_poll_seconds: float = Field(1.0, gt=0)  # how often a waiting worker looks again
    # After Ctrl-C / SIGTERM, how long the paid calls in flight may take to finish and be recorded; then (or at a
    # second signal) they are abandoned and named.
    stop_grace_seconds: float = Field(60.0, gt=0)
    # What a build rebuilds: "outdated" (make-style: every target whose inputs changed) or "missing" (the original
    # system's "skip if exists": only targets with no file yet; files whose inputs changed stay, listed as stale).
    rebuild: Literal["outdated", "missing"] = "outdated"
    # On a terminal, a paid build estimated above this asks `Proceed? [y/N]` first (max_cost= or yes=1 skip it).
    confirm_above: float = Field(1.0, ge=0)


class ObjectsSettings(BaseModel):
    """The local object store (`[objects]` in storytree.toml): every paid asset once, by sha256, under the data
    folder; assets are materialised from it."""

    model_config = ConfigDict(extra="forbid")
    # "copy" (default): a reflink where the filesystem has one, else a copy — an in-place edit of an asset never
    # reaches its object. "hardlink": no second copy on disk, but a program that rewrites an asset in place changes
    # the stored object too (verify reports it; re-adding the genuine bytes repairs it).
    link: Literal["copy", "hardlink"] = "copy"
    keep_versions: int = Field(3, ge=0)  # earlier versions per target `storytree gc` keeps (current ones always)


class RemoteSettings(BaseModel):
    """A shared remote for the objects (`[remote]` in storytree.toml, or STORYTREE_REMOTE): `file:///folder` or
    `s3://bucket/prefix`. Endpoint, region and credentials come from the standard AWS_* variables, or from here
    (never put secrets in storytree.toml: it is committed)."""

    model_config = ConfigDict(extra="forbid")
    url: str = ""  # '' = no remote
    endpoint: str | None = None  # e.g. https://<ref>.storage.supabase.co/storage/v1/s3, http://127.0.0.1:9000
    region: str | None = None
    allow_http: bool = False  # an http:// endpoint (a local server) is allowed anyway
    access_key_id: SecretStr | None = None  # AWS_ACCESS_KEY_ID
    secret_access_key: SecretStr | None = None  # AWS_SECRET_ACCESS_KEY
    session_token: SecretStr | None = None  # AWS_SESSION_TOKEN
    timeout_seconds: float = Field(60.0, gt=0)  # per request (a whole download of one object)
    connect_timeout_seconds: float = Field(5.0, gt=0)

    def options(self) -> dict[str, str]:
        """What objects.remote.open_remote takes beside the URL: for an s3:// remote, its endpoint, region and
        credentials; for any remote, the client's time limits."""
        out = {"timeout": f"{self.timeout_seconds}s", "connect_timeout": f"{self.connect_timeout_seconds}s"}
        if not self.url.startswith(("s3://", "s3a://")):
            return out
        for key, value in (("endpoint", self.endpoint), ("region", self.region)):
            if value:
                out[key] = value
        for key, secret in (("access_key_id", self.access_key_id), ("secret_access_key", self.secret_access_key),
                            ("session_token", self.session_token)):
            if secret is not None:
                out[key] = secret.get_secret_value()
        if self.allow_http or (self.endpoint or "").startswith("http://"):
            out["allow_http"] = "true"
        return out


class PromptsSettings(BaseModel):
    """A project's own prompt files (`[prompts]` in storytree.toml, or STORYTREE_PROMPTS_DIR): a file in `dir` is used
    instead of the same-named one in templates/ or system_prompts/ (docs/prompts.md)."""

    model_config = ConfigDict(extra="forbid")
    dir: Path | None = None  # relative to the project root


class ReviewSettings(BaseModel):
    """Human review between the cheap and the expensive step (`[review]` in storytree.toml)."""

    model_config = ConfigDict(extra="forbid")
    # "required": a shot's video is not submitted until its key frame (that exact file) is approved.
    key_frames: Literal["off", "required"] = "off"


# The layered sources of the one `load_settings` call under way (sources.py), highest precedence first.
# `settings_customise_sources` is a classmethod, so the run's environment, root and doit variables reach it here;
# a `Settings(...)` built directly has none and takes only its arguments.
LAYERED_SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("storytree_settings_sources",
                                                                                 default=())


class Settings(BaseSettings):
    """Every setting of a run. Build it with `load_settings` (defaults < storytree.toml < environment < doit
    variables < explicit overrides); `state_dir`, `data_dir` and `db_path` default under `root`."""

    model_config = SettingsConfigDict(extra="forbid", case_sensitive=True, validate_default=False)
    root: Path
    store: Literal["sqlite", "supabase"] = "sqlite"
    db_path: Path
    db_path_is_default: bool = True  # neither STORYTREE_DB nor db_path in storytree.toml
    state_dir: Path  # caches only: doit's database, the manifest cache, locks — deleting it pays nothing
    data_dir: Path  # what must be kept: the default story database and the local objects (every paid asset)
    build: BuildSettings = Field(default_factory=BuildSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    prompts: PromptsSettings = Field(default_factory=PromptsSettings)
    objects: ObjectsSettings = Field(default_factory=ObjectsSettings)
    remote: RemoteSettings = Field(default_factory=RemoteSettings)
    provider: str = "gemini"
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None
    supabase_url: str | None = None
    supabase_service_role_key: SecretStr | None = None
    verbose: bool = False
    story: str | None = None  # STORYTREE_STORY: the story a doit invocation builds
    ci: bool = False  # env CI: the real providers refuse any non-loopback endpoint; a stale manifest is refused
    # A manifest the story store has moved past is refused instead of written again (doit var frozen= or
    # STORYTREE_FROZEN); unset: frozen in CI. `frozen=0` lets a CI job regenerate it.
    frozen: bool | None = None
    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    prices: PriceTable = Field(default_factory=PriceTable)  # `[prices]` in storytree.toml
    storage: StorageSettings = Field(default_factory=StorageSettings)
    max_cost: float | None = None  # refuse builds whose estimate exceeds this (doit var max_cost= or STORYTREE_MAX_COST)
    yes: bool = False  # consent to pay without being asked (doit var yes=1 or STORYTREE_YES=1); max_cost= is consent too
    stub_call_log: Path | None = None  # the stub appends one line per "paid" call (tests count re-payments)
    stub_delay_seconds: float = 0.0  # lets tests and benchmarks give the offline provider some latency
    video_poll_interval_seconds: float = Field(10.0, ge=0)
    # How long one build waits for a video; past it the operation stays recorded and the next run resumes it.
    video_poll_deadline_seconds: float = Field(1200.0, gt=0)
    # Generated videos are kept by the server for about 2 days; older operations cannot be resumed.
    video_retention_hours: float = Field(48.0, gt=0)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Never pydantic-settings' own os.environ reader: sources.py maps the environment it was given.
        return init_settings, *LAYERED_SOURCES.get()

    @model_validator(mode="before")
    @classmethod
    def _default_folders(cls, data: Any) -> Any:
        """The folders default under the root, the story database under the data folder."""
        if not isinstance(data, dict) or "root" not in data:
            return data
        data = dict(data)
        root = Path(data["root"])
        data.setdefault("state_dir", root / ".storytree")
        data.setdefault("data_dir", root / ".storytree-data")
        data["db_path_is_default"] = not data.get("db_path")
        if data["db_path_is_default"]:  # a data_dir of the wrong type is reported on its own line
            data_dir = data["data_dir"] if isinstance(data["data_dir"], (str, Path)) else root / ".storytree-data"
            data["db_path"] = Path(data_dir) / "story.sqlite"
        return data

    @property
    def assets_root(self) -> Path:
        return self.root / ASSETS_REL

    @property
    def public_root(self) -> Path:
        return self.root / "apps/story-tree-ui/public"

    @property
    def manifest_frozen(self) -> bool:
        return self.ci if self.frozen is None else self.frozen

    @property
    def manifests_dir(self) -> Path:
        return self.root / "manifests"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def system_prompts_dir(self) -> Path:
        return self.root / "system_prompts"

    @property
    def prompt_overrides_dir(self) -> Path | None:
        """`[prompts] dir` resolved against the project root; None when the project keeps no prompts of its own."""
        return None if self.prompts.dir is None else self.root / self.prompts.dir

    @property
    def legacy_records_path(self) -> Path:
        """Where earlier versions kept records (per checkout); imported into the story store once."""
        return self.state_dir / "records.sqlite"

    @property
    def recovery_dir(self) -> Path:
        """Where earlier versions kept paid results they could not write (read, never written any more)."""
        return self.data_dir / "recovery"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"
