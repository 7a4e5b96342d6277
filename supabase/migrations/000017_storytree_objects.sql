-- storytree-build: every paid result kept. A record says what its file cost, which remote holds its object and which
-- version it is; a replaced record is kept as a version (with the review verdict that held for its file) in the same
-- transaction that writes the new one. Idempotent: safe to run again.

alter table public.storytree_records add column if not exists cost double precision;
alter table public.storytree_records add column if not exists pushed_to text not null default '';
alter table public.storytree_records add column if not exists version integer not null default 1;

create table if not exists public.storytree_versions (
  story_id uuid not null references public.stories (id) on delete cascade,
  task text not null,
  version integer not null,
  output_sha256 text not null,
  record jsonb not null,
  verdict text not null default '',
  replaced_at text not null,
  primary key (story_id, task, version)
);
create index if not exists storytree_versions_sha on public.storytree_versions (output_sha256);

create or replace function public.storytree_put_record(p_record jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_records
  select * from jsonb_populate_record(null::public.storytree_records, p_record)
  on conflict (story_id, task) do update set
    output = excluded.output, signature = excluded.signature, inputs = excluded.inputs,
    output_sha256 = excluded.output_sha256, output_size = excluded.output_size,
    output_mtime_ns = excluded.output_mtime_ns, provider = excluded.provider, model = excluded.model,
    prompt_sha256 = excluded.prompt_sha256, built_at = excluded.built_at, published = excluded.published,
    identity = excluded.identity, origin = excluded.origin, built_by = excluded.built_by, detail = excluded.detail,
    cost = excluded.cost, pushed_to = excluded.pushed_to, version = excluded.version;
$$;

-- The new record and the version it replaces, in one transaction (a replaced file is never forgotten).
create or replace function public.storytree_put_record_keeping(p_record jsonb, p_replaced jsonb)
returns void language plpgsql volatile set search_path = '' as $$
begin
  if p_replaced is not null then
    insert into public.storytree_versions
    select * from jsonb_populate_record(null::public.storytree_versions, p_replaced)
    on conflict (story_id, task, version) do nothing;
  end if;
  perform public.storytree_put_record(p_record);
end
$$;

-- After `storytree push`: the records (and kept versions) whose objects the remote now holds.
create or replace function public.storytree_mark_pushed(p_story_id uuid, p_shas text[], p_remote text)
returns void language sql volatile set search_path = '' as $$
  update public.storytree_records set pushed_to = p_remote
   where story_id = p_story_id and output_sha256 = any(p_shas);
  update public.storytree_versions set record = jsonb_set(record, '{pushed_to}', to_jsonb(p_remote))
   where story_id = p_story_id and output_sha256 = any(p_shas);
$$;

create or replace function public.storytree_delete_versions(p_story_id uuid, p_task text, p_versions integer[])
returns void language sql volatile set search_path = '' as $$
  delete from public.storytree_versions
   where story_id = p_story_id and task = p_task and version = any(p_versions);
$$;

create or replace function public.storytree_import_versions(p_versions jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_versions
  select * from jsonb_populate_recordset(null::public.storytree_versions, coalesce(p_versions, '[]'::jsonb))
  on conflict (story_id, task, version) do nothing;
$$;

do $$
declare
  fn text;
begin
  foreach fn in array array[
      'public.storytree_put_record(jsonb)', 'public.storytree_put_record_keeping(jsonb, jsonb)',
      'public.storytree_mark_pushed(uuid, text[], text)', 'public.storytree_delete_versions(uuid, text, integer[])',
      'public.storytree_import_versions(jsonb)'] loop
    execute format('revoke all on function %s from public', fn);
    if exists (select 1 from pg_roles where rolname = 'anon') then
      execute format('revoke all on function %s from anon', fn);
    end if;
    if exists (select 1 from pg_roles where rolname = 'authenticated') then
      execute format('revoke all on function %s from authenticated', fn);
    end if;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
      execute format('grant execute on function %s to service_role', fn);
    end if;
  end loop;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant select, insert, update, delete on public.storytree_versions to service_role;
  end if;
end
$$;

notify pgrst, 'reload schema';
