-- storytree-build: local mirror of the original migration 000004 (idempotent).
-- The original also created three prompt columns that 000006 drops; they are omitted here.
create table if not exists public.shots (
  id uuid primary key default gen_random_uuid(),
  story_id uuid not null references public.stories (id) on delete cascade,
  scenelet_id text not null,
  scenelet_sequence integer not null check (scenelet_sequence > 0),
  shot_index integer not null check (shot_index > 0),
  storyboard_payload jsonb not null,
  created_at timestamptz not null default timezone('utc', now()),
  updated_at timestamptz not null default timezone('utc', now()),
  unique (story_id, scenelet_id, shot_index)
);

create index if not exists shots_story_scenelet_idx on public.shots (story_id, scenelet_id, shot_index);

drop trigger if exists set_current_timestamp_updated_at_shots on public.shots;
create trigger set_current_timestamp_updated_at_shots
  before update on public.shots
  for each row execute function public.set_current_timestamp_updated_at();

alter table public.stories drop column if exists storyboard_breakdown;
alter table public.stories drop column if exists generation_prompts;
