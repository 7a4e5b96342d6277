-- storytree-build: local mirror of the original migration 000006 (idempotent).
alter table public.shots drop column if exists first_frame_prompt;
alter table public.shots drop column if exists key_frame_prompt;
alter table public.shots drop column if exists video_clip_prompt;
alter table public.shots drop column if exists first_frame_image_path;
