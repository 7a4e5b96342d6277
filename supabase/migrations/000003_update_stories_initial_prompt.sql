-- storytree-build: local mirror of the original migration 000003 (idempotent).
-- Adds stories.initial_prompt (not null, no default) and drops the retired interactive_script column.
alter table public.stories add column if not exists initial_prompt text not null default '';
alter table public.stories alter column initial_prompt drop default;
alter table public.stories drop column if exists interactive_script;
