"""Every error storytree raises on purpose, typed from raise to summary.

Each class says what kind of failure it is, whether building again is safe (cannot pay twice and may succeed), and
which exit code it implies for the run:

    StorytreeError                 base; the CLI prints its message and exits non-zero (exit codes: exit_codes.py)
    ├── InputError                 a story document, file or argument the user must fix (exit 1)
    │   ├── ManifestDriftError     a committed manifest differs from what the store says (exit 5)
    │   ├── FrozenManifest         a frozen build (CI, frozen=1) found its manifest behind the store (exit 3)
    │   └── OtherInputs            an earlier version asked for was made from other inputs than the manifest's now
    ├── ConfigError                missing key, retired model id, unknown provider/store
    ├── StoreError                 the story database refused or lost a read/write (a re-run only publishes)
    │   └── UnreadableRow          a record, operation or claim row that cannot be parsed: the command that clears it
    ├── EnvironmentFault           a folder cannot be written, the disk is full: fix it and build again
    ├── ClaimedElsewhere           another worker (any machine) is building the target right now: not paid here
    ├── BuiltElsewhere             another checkout built the target; this one lacks the file: push there, not pay
    ├── AssetLost                  a recorded file is gone and no copy is kept: `doit -a` pays for a new one
    ├── BudgetExceeded             a paid call would take the run past max_cost: not started
    ├── AwaitingReview             a video whose key frame is not approved yet ([review] key_frames): not paid (exit 4)
    ├── BatchPending               an image waits in a batch job that is still running: collect it later (exit 75)
    ├── Interrupted                Ctrl-C or SIGTERM: a target not started (or a video left polling): exit 130 / 143
    └── ProviderError              a generation failed for one target
        ├── RetryableProviderError 429 / 5xx / timeouts: safe to try again
        ├── GenerationRefused      safety / policy block: never retried as-is
        ├── QuotaExhausted         a per-day quota is used up: no new submissions to that model (exit 75)
        ├── PaidNothingReceived    a paid call may have been billed but nothing usable came back: counted as spend
        └── SubmitUncertain        a paid submit may have reached the server: never resubmitted

`possibly_billed` marks the failures of a paid call that the provider may have charged for all the same: the spend
gate counts their estimate as spent (in the summary and against max_cost) instead of releasing it.

Messages name the story, target or field and say how to fix it. Secrets never appear in them.
"""

from .exit_codes import ExitCode


class StorytreeError(Exception):
    kind = "error"
    retry_safe = False  # would building again, unchanged, be safe and possibly succeed?
    exit_code = ExitCode.FAILED
    possibly_billed = False  # raised out of a paid call the provider may have charged for: counted as spent


class InputError(StorytreeError):
    kind = "input"


class ManifestDriftError(InputError):
    kind = "drift"
    exit_code = ExitCode.CHECK_FOUND_WORK


class FrozenManifest(InputError):
    """The manifest no longer matches the story store and the build is frozen (CI, `frozen=1`): refused before
    anything is built, with the command that writes it again."""

    kind = "frozen"
    exit_code = ExitCode.REFUSED


class OtherInputs(InputError):
    """`storytree restore` (or the review page) asked for a version made from other inputs than the manifest's now:
    nothing is changed unless the user accepts it for the present inputs (`--keep`, a CLI decision)."""

    kind = "other-inputs"


class ConfigError(StorytreeError):
    kind = "config"


class StoreError(StorytreeError):
    kind = "store"
    retry_safe = True  # the asset is recorded: the next build only writes its path


class UnreadableRow(StoreError):
    """A record, operation or claim row of the story store that cannot be parsed: named with the command that clears
    it, never a traceback; nothing is paid for its target while it stands."""

    retry_safe = False  # building again changes nothing until the row is cleared


class EnvironmentFault(StorytreeError):
    """The machine, not the story: an unwritable folder, a full disk. Nothing paid is lost (see build/recovery.py)."""

    kind = "environment"
    retry_safe = True


class ClaimedElsewhere(StorytreeError):
    kind = "claimed"
    retry_safe = True


class BuiltElsewhere(StorytreeError):
    kind = "elsewhere"
    retry_safe = True


class AssetLost(StorytreeError):
    """A recorded file is gone and no copy is kept (local objects, remote): never paid for again on its own."""

    kind = "lost"


class ProviderError(StorytreeError):
    kind = "provider"


class RetryableProviderError(ProviderError):
    kind = "retryable"
    retry_safe = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class GenerationRefused(ProviderError):
    kind = "refused"


class BilledRefusal(GenerationRefused):
    """The model answered (HTTP 200) but withheld the image on policy grounds: the answer is billed like any other."""

    possibly_billed = True


class PaidNothingReceived(ProviderError):
    """A paid call reached the provider but nothing usable came back: the answer was lost after the request was sent,
    could not be read, or held no image. The provider may have billed it, so it counts as spend. Asking again is a new
    payment: the spend gate makes it at most `retries` times per build for this target and this `allowance`."""

    kind = "unreceived"
    possibly_billed = True

    def __init__(self, message: str, allowance: str = "lost", retries: int = 0):
        super().__init__(message)
        self.allowance, self.retries = allowance, retries


class BudgetExceeded(StorytreeError):
    kind = "budget"


class AwaitingReview(StorytreeError):
    """`[review] key_frames = "required"` and the shot's key frame is not approved: its video is held back."""

    kind = "review"
    retry_safe = True  # once the frame is approved
    exit_code = ExitCode.WAITING_FOR_REVIEW

    def __init__(self, message: str, frame_task: str):
        super().__init__(message)
        self.frame_task = frame_task


class BatchPending(StorytreeError):
    """An image is in a batch job that has not finished (or batch mode left it for the next run): never paid for
    again interactively; the next run collects it."""

    kind = "batch"
    retry_safe = True
    exit_code = ExitCode.TRY_LATER


class QuotaExhausted(ProviderError):
    """The provider's per-day quota for `model` is used up; `reset_hint` says when it comes back."""

    kind = "quota"
    retry_safe = True  # after the reset
    exit_code = ExitCode.TRY_LATER

    def __init__(self, message: str, model: str, reset_hint: str = ""):
        super().__init__(message)
        self.model = model
        self.reset_hint = reset_hint


class SubmitUncertain(ProviderError):
    kind = "uncertain"
    possibly_billed = True  # the job may exist: its estimate counts as spent


class FailedEarlier(StorytreeError):
    """A failure already recorded in this run (e.g. a refusal inside a batch job), raised again where the target is
    asked for: same message, kind and exit code, never paid for again."""

    def __init__(self, message: str, kind: str, retry_safe: bool, exit_code: int):
        super().__init__(message)
        self.kind, self.retry_safe, self.exit_code = kind, retry_safe, ExitCode(exit_code)


class Interrupted(StorytreeError):
    """Ctrl-C or SIGTERM asked the build to stop: this target starts no paid call (or a recorded video stops polling
    and resumes next time). Nothing was paid for it here; the same command resumes."""

    kind = "interrupted"
    retry_safe = True

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


def collect(problems: list[str], header: str) -> None:
    """Raise one InputError listing every problem (validation reports everything at once)."""
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise InputError(f"{header} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{lines}")

