"""Reading a 429: a per-minute limit is waited out; a per-day quota stops new submissions to that model.

Gemini's RESOURCE_EXHAUSTED errors carry `google.rpc.QuotaFailure` violations whose `quotaId` /
`quotaMetric` name the window (e.g. `GenerateRequestsPerDayPerProjectPerModel`). Daily quotas reset at
midnight Pacific time (Gemini API rate-limit docs).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo


def quota_window(error_details: Any) -> str | None:
    """'day', 'minute' or None, from the `details` list of a Google API error body."""
    details = error_details
    if isinstance(details, dict):
        details = (details.get("error") or details).get("details")
    if not isinstance(details, list):
        return None
    windows = set()
    for detail in details:
        if not isinstance(detail, dict) or "QuotaFailure" not in str(detail.get("@type", "")):
            continue
        for violation in detail.get("violations") or []:
            text = " ".join(str(violation.get(k, "")) for k in ("quotaId", "quotaMetric")).lower()
            if "perday" in text or "per_day" in text or "daily" in text:
                windows.add("day")
            elif "perminute" in text or "per_minute" in text:
                windows.add("minute")
    return "day" if "day" in windows else ("minute" if windows else None)


def daily_reset_hint(now: datetime | None = None) -> str:
    pacific = ZoneInfo("America/Los_Angeles")
    now = (now or datetime.now(timezone.utc)).astimezone(pacific)
    reset = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    hours = (reset - now).total_seconds() / 3600
    return f"daily quotas reset at midnight Pacific time ({reset.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, in about {hours:.0f} h)"
