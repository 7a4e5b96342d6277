-- storytree-build: local mirror of the original migration 000010 (idempotent).
alter table public.shots add column if not exists video_file_path text;
