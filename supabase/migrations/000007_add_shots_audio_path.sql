-- storytree-build: local mirror of the original migration 000007 (idempotent).
-- May hold the literal placeholder 'N/A'.
alter table public.shots add column if not exists audio_file_path text;
