-- storytree-build: local mirror of the original migration 000009 (idempotent).
alter table public.scenelets add column if not exists branch_audio_file_path text;
