"""The two video protocols on the wire, as plain data: the request bodies and how to read an answer.

    interactions (default)   POST /v1beta/interactions through the SDK's `client.interactions.create`
                             (model `gemini-omni-1.1-flash`, background, `response_format` type video,
                             delivery uri); poll `client.interactions.get(id)`. Operation name `interactions/<id>`.
    predict_long_running     POST /v1beta/models/<model>:predictLongRunning (the Veo protocol, sent with httpx
                             because google-genai ≥ 3 refuses `generate_videos` with an API key); poll
                             GET /v1beta/<operation name>. Operation name as the server gives it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, TypeGuard

from ..core.errors import ProviderError
from .base import VideoRequest, VideoStatus
from .google_http import short

INTERACTION_PREFIX = "interactions/"
PENDING = frozenset({"in_progress", "queued", "requires_continuation"})
FAILED = frozenset({"failed", "cancelled", "incomplete", "budget_exceeded", "requires_action"})
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
SAFE_OPERATION = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# Words the services use when a video is withheld on policy grounds (not charged, never retried as-is).
SAFETY_WORDS = re.compile(r"safety|\bRAI\b|responsible ai|prohibited|blocklist|\bblocked\b|filtered|usage guidelines"
                          r"|violat", re.IGNORECASE)


def b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(padded)


def field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def is_operation_name(name: Any) -> TypeGuard[str]:
    return isinstance(name, str) and bool(SAFE_OPERATION.match(name)) and ".." not in name


# -- interactions -------------------------------------------------------------------------------------
def interaction_input(request: VideoRequest) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [
        {"type": "image", "data": base64.b64encode(ref.data).decode("ascii"), "mime_type": ref.mime_type}
        for ref in request.references]
    content.append({"type": "text", "text": request.prompt})
    return content


def interaction_format(config: dict[str, Any]) -> dict[str, Any]:
    return {"type": "video", "aspect_ratio": config["aspect_ratio"], "resolution": config["resolution"],
            "duration": f"{int(config['duration_seconds'])}s", "delivery": "uri"}


def read_interaction(interaction: Any) -> VideoStatus:
    status = str(field(interaction, "status") or "")
    if status in PENDING:
        return VideoStatus(done=False)
    reasons = _interaction_errors(interaction)
    if status == "completed":
        video = _interaction_video(interaction)
        if video is not None:
            uri, data = field(video, "uri"), field(video, "data")
            if uri:
                return VideoStatus(done=True, uri=str(uri))
            if data:
                try:
                    return VideoStatus(done=True, data=b64decode(data) if isinstance(data, str) else bytes(data))
                except (binascii.Error, ValueError, TypeError):
                    return VideoStatus(done=True, error="the inline video data is not valid base64")
        text = field(interaction, "output_text")
        reasons += [f"the model said {short(text)!r}"] if text else []
        why = "; ".join(reasons) or "no reason given"
        if reasons and SAFETY_WORDS.search(why):
            return VideoStatus(done=True, refused=True, error=why)
        return VideoStatus(done=True, error=f"the interaction completed without a video ({why})")
    if status in FAILED:
        why = "; ".join(reasons) or "no reason given"
        if SAFETY_WORDS.search(why):
            return VideoStatus(done=True, refused=True, error=why)
        return VideoStatus(done=True, error=f"status {status}: {why}")
    raise ProviderError(f"the interaction has status {status or 'none'!r}, which this version does not know; "
                        "it stays recorded, so the next build asks again without paying.")


def _interaction_video(interaction: Any) -> Any:
    video = field(interaction, "output_video")
    if video is not None:
        return video
    for step in reversed(field(interaction, "steps") or []):
        for item in reversed(field(step, "content") or []):
            if field(item, "type") == "video":
                return item
    for item in reversed(field(interaction, "outputs") or []):
        if field(item, "type") == "video":
            return item
    return None


def _interaction_errors(interaction: Any) -> list[str]:
    found = []
    errors = list(field(interaction, "errors") or [])
    errors += [field(step, "error") for step in field(interaction, "steps") or [] if field(step, "error") is not None]
    for error in errors:
        text = " ".join(str(x) for x in (field(error, "code"), field(error, "message")) if x)
        if text:
            found.append(short(text))
    return found


# -- predictLongRunning (Veo) -------------------------------------------------------------------------
def predict_body(request: VideoRequest, config: dict[str, Any]) -> dict[str, Any]:
    instance: dict[str, Any] = {"prompt": request.prompt}
    if request.references:
        instance["referenceImages"] = [
            {"image": {"bytesBase64Encoded": base64.b64encode(ref.data).decode("ascii"), "mimeType": ref.mime_type},
             "referenceType": "ASSET"}
            for ref in request.references]
    return {"instances": [instance],
            "parameters": {"aspectRatio": config["aspect_ratio"], "resolution": config["resolution"],
                           "durationSeconds": int(config["duration_seconds"]),
                           "personGeneration": config.get("person_generation") or "allow_adult",
                           "sampleCount": 1}}


def read_operation(data: Any) -> VideoStatus:
    if not isinstance(data, dict):
        raise ProviderError("the operation answer is not a JSON object; it stays recorded.")
    if not data.get("done"):
        return VideoStatus(done=False)
    error = data.get("error")
    if isinstance(error, dict) and (error.get("message") or error.get("code") is not None):
        why = short(f"code {error.get('code')}: {error.get('message') or ''}")
        if SAFETY_WORDS.search(why):
            return VideoStatus(done=True, refused=True, error=why)
        return VideoStatus(done=True, error=why)
    response = data.get("response") or {}
    answer = response.get("generateVideoResponse") or response.get("generate_video_response") or {}
    samples = answer.get("generatedSamples") or answer.get("generated_samples") or []
    for sample in samples:
        video = sample.get("video") if isinstance(sample, dict) else None
        if not isinstance(video, dict):
            continue
        if video.get("uri"):
            return VideoStatus(done=True, uri=str(video["uri"]))
        encoded = video.get("encodedVideo") or video.get("bytesBase64Encoded")
        if encoded:
            try:
                return VideoStatus(done=True, data=b64decode(encoded))
            except (binascii.Error, ValueError):
                return VideoStatus(done=True, error="the inline video data is not valid base64")
    filtered = answer.get("raiMediaFilteredCount") or answer.get("rai_media_filtered_count")
    reasons = answer.get("raiMediaFilteredReasons") or answer.get("rai_media_filtered_reasons") or []
    if filtered or reasons:
        text = "; ".join(short(str(r)) for r in reasons) or f"{filtered} video(s) filtered"
        return VideoStatus(done=True, refused=True, error=f"safety filter (RAI): {text}")
    return VideoStatus(done=True, error="the operation finished without a video")
