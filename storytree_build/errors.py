"""Every error storytree raises on purpose.

    StorytreeError                 base; the CLI prints its message and exits non-zero
    ├── InputError                 a story document, file or argument the user must fix (exit 1)
    │   └── ManifestDriftError     a committed manifest differs from what the store says (exit 2)
    ├── ConfigError                missing key, retired model id, unknown provider/store
    ├── StoreError                 the story database refused or lost a read/write
    ├── BudgetExceeded             a paid call would take the run past max_cost: not started
    └── ProviderError              a generation failed for one target
        ├── RetryableProviderError 429 / 5xx / timeouts: safe to try again
        ├── GenerationRefused      safety / policy block: never retried as-is
        ├── QuotaExhausted         a per-day quota is used up: no new submissions to that model
        └── SubmitUncertain        a paid submit may have reached the server: never resubmitted

Messages name the story, target or field and say how to fix it. Secrets never appear in them.
"""


class StorytreeError(Exception):
    exit_code = 1


class InputError(StorytreeError):
    pass


class ManifestDriftError(InputError):
    exit_code = 2


class ConfigError(StorytreeError):
    pass


class StoreError(StorytreeError):
    pass


class ProviderError(StorytreeError):
    pass


class RetryableProviderError(ProviderError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class GenerationRefused(ProviderError):
    pass


class BudgetExceeded(StorytreeError):
    pass


class QuotaExhausted(ProviderError):
    """The provider's per-day quota for `model` is used up; `reset_hint` says when it comes back."""

    exit_code = 75  # EX_TEMPFAIL: try again later

    def __init__(self, message: str, model: str, reset_hint: str = ""):
        super().__init__(message)
        self.model = model
        self.reset_hint = reset_hint


class SubmitUncertain(ProviderError):
    pass


def collect(problems: list[str], header: str) -> None:
    """Raise one InputError listing every problem (validation reports everything at once)."""
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise InputError(f"{header} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{lines}")
