"""What is generated for each kind of target: model, image or video configuration, and how many references go with a
key frame (`[generation]` in storytree.toml). Part of every target's inputs, so the manifest is made from these
values, not from the settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ImageTargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "gemini-3.1-flash-image"
    aspect_ratio: str = "16:9"
    image_size: str | None = "1K"


class VideoTargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "gemini-omni-1.1-flash"
    api: Literal["interactions", "predict_long_running"] = "interactions"
    aspect_ratio: str = "16:9"
    resolution: str = "1080p"
    duration_seconds: int = 8
    person_generation: str = "allow_adult"
    max_reference_images: int = 3

    def problems(self, reference_count: int) -> list[str]:
        """Combinations the video API rejects (the SDK validates none of them): checked by the manifest and again
        by the provider before a paid submit."""
        out = []
        if reference_count > min(self.max_reference_images, 3):
            out.append(f"{reference_count} reference images; video generation accepts at most 3.")
        duration, resolution, aspect = self.duration_seconds, self.resolution, self.aspect_ratio
        if duration not in (4, 6, 8):
            out.append(f"video duration_seconds must be 4, 6 or 8 (got {duration}).")
        if reference_count and duration != 8:
            out.append(f"video duration_seconds must be 8 when reference images are sent (got {duration}).")
        if resolution in ("1080p", "4k") and duration != 8:
            out.append(f"video duration_seconds must be 8 at {resolution} (got {duration}).")
        if reference_count and aspect != "16:9":
            out.append(f"video aspect_ratio must be 16:9 when reference images are sent (got {aspect}).")
        if reference_count and self.person_generation != "allow_adult":
            out.append("video person_generation must be allow_adult when reference images are sent.")
        return out


class GenerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    character_plate: ImageTargetConfig = Field(default_factory=ImageTargetConfig)
    environment_keyframe: ImageTargetConfig = Field(default_factory=ImageTargetConfig)
    key_frame: ImageTargetConfig = Field(default_factory=ImageTargetConfig)
    video: VideoTargetConfig = Field(default_factory=VideoTargetConfig)
    max_key_frame_references: int = 5
    # Batch mode (`batch=1`, STORYTREE_BATCH): out-of-date images go into Gemini Batch API jobs at half the price,
    # with a turnaround of minutes to 24 hours. Same request per target; the manifest does not change.
    batch: bool = False
    batch_max_requests: int = Field(50, ge=1, le=500)  # per job: large inline image batches were unretrievable
    batch_wait_minutes: float = Field(60.0, ge=0)  # a run waits this long for its jobs, then ends (exit 75)
    batch_poll_seconds: float = Field(30.0, ge=0)
