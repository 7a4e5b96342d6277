-- storytree-build: local mirror of the original migration 000005 (idempotent).
-- first_frame_image_path is dropped again by 000006.
alter table public.shots add column if not exists first_frame_image_path text;
alter table public.shots add column if not exists key_frame_image_path text;
