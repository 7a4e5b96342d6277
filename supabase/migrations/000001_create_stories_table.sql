-- storytree-build: local mirror of the original story-tree migration 000001 (final shape, idempotent).
-- Version numbers match the original project, so `supabase db push` against a project that already ran
-- the original 000001..000010 only applies the later files of this folder.
create extension if not exists pgcrypto;

create or replace function public.set_current_timestamp_updated_at()
returns trigger
language plpgsql
as $$
begin
  new.updated_at := timezone('utc', now());
  return new;
end;
$$;

create table if not exists public.stories (
  id uuid primary key default gen_random_uuid(),
  display_name text not null check (char_length(trim(display_name)) > 0),
  display_name_upper text generated always as (upper(display_name)) stored,
  story_constitution jsonb,
  visual_design_document jsonb,
  audio_design_document jsonb,
  visual_reference_package jsonb,
  created_at timestamptz not null default timezone('utc', now()),
  updated_at timestamptz not null default timezone('utc', now())
);

drop trigger if exists set_current_timestamp_updated_at on public.stories;
create trigger set_current_timestamp_updated_at
  before update on public.stories
  for each row execute function public.set_current_timestamp_updated_at();

create index if not exists stories_display_name_upper_idx on public.stories (display_name_upper);
