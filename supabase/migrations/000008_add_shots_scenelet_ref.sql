-- storytree-build: local mirror of the original migration 000008 (idempotent).
alter table public.shots
  add column if not exists scenelet_ref uuid not null references public.scenelets (id) on delete cascade;

create index if not exists shots_scenelet_ref_idx on public.shots (scenelet_ref);

comment on column public.shots.scenelet_ref is
  'The scenelet row (uuid) this shot belongs to; scenelet_id holds the derived human label such as scenelet-3.';
