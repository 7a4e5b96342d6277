-- storytree-build: the build's own state beside the story — pay-once records, in-flight video operations and
-- claims (leases between machines). Reads are plain selects; every write is one RPC (one transaction).
-- Idempotent: safe to run again.

create table if not exists public.storytree_records (
  story_id uuid not null references public.stories (id) on delete cascade,
  task text not null,
  output text not null,
  signature text not null,
  inputs jsonb not null,
  output_sha256 text not null,
  output_size bigint not null,
  output_mtime_ns bigint not null,
  provider text not null,
  model text not null,
  prompt_sha256 text not null,
  built_at text not null,
  published boolean not null default false,
  identity text not null default '',
  origin text not null default 'built',
  built_by text not null default '',
  detail text not null default '',
  primary key (story_id, task)
);

create table if not exists public.storytree_operations (
  story_id uuid not null references public.stories (id) on delete cascade,
  task text not null,
  signature text not null,
  provider text not null,
  model text not null,
  state text not null,
  operation text,
  submitted_at text not null,
  download_uri text,
  error text,
  primary key (story_id, task)
);

create table if not exists public.storytree_claims (
  story_id uuid not null references public.stories (id) on delete cascade,
  task text not null,
  owner text not null,
  claimed_at timestamptz not null,
  expires_at timestamptz not null,
  primary key (story_id, task)
);

create or replace function public.storytree_put_record(p_record jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_records
  select * from jsonb_populate_record(null::public.storytree_records, p_record)
  on conflict (story_id, task) do update set
    output = excluded.output, signature = excluded.signature, inputs = excluded.inputs,
    output_sha256 = excluded.output_sha256, output_size = excluded.output_size,
    output_mtime_ns = excluded.output_mtime_ns, provider = excluded.provider, model = excluded.model,
    prompt_sha256 = excluded.prompt_sha256, built_at = excluded.built_at, published = excluded.published,
    identity = excluded.identity, origin = excluded.origin, built_by = excluded.built_by, detail = excluded.detail;
$$;

create or replace function public.storytree_mark_published(p_story_id uuid, p_task text)
returns void language sql volatile set search_path = '' as $$
  update public.storytree_records set published = true where story_id = p_story_id and task = p_task;
$$;

create or replace function public.storytree_replace_records(p_story_id uuid, p_remove text[], p_add jsonb)
returns void language plpgsql volatile set search_path = '' as $$
declare
  item jsonb;
begin
  delete from public.storytree_records where story_id = p_story_id and task = any(p_remove);
  for item in select * from jsonb_array_elements(coalesce(p_add, '[]'::jsonb)) loop
    perform public.storytree_put_record(item);
  end loop;
end
$$;

create or replace function public.storytree_delete_record(p_story_id uuid, p_task text)
returns void language sql volatile set search_path = '' as $$
  delete from public.storytree_records where story_id = p_story_id and task = p_task;
$$;

create or replace function public.storytree_put_operation(p_operation jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_operations
  select * from jsonb_populate_record(null::public.storytree_operations, p_operation)
  on conflict (story_id, task) do update set
    signature = excluded.signature, provider = excluded.provider, model = excluded.model, state = excluded.state,
    operation = excluded.operation, submitted_at = excluded.submitted_at, download_uri = excluded.download_uri,
    error = excluded.error;
$$;

create or replace function public.storytree_delete_operation(p_story_id uuid, p_task text)
returns void language sql volatile set search_path = '' as $$
  delete from public.storytree_operations where story_id = p_story_id and task = p_task;
$$;

-- Take (or extend) the lease on one target. Returns null when it is the caller's now, else the live claim another
-- owner holds. The insert creates the row under the unique key (a concurrent claimer waits for it), the select
-- locks it; so two workers can never both be told the target is theirs. Times are the database's own.
create or replace function public.storytree_claim(p_story_id uuid, p_task text, p_owner text,
                                                  p_lease_seconds double precision)
returns jsonb language plpgsql volatile set search_path = '' as $$
declare
  held public.storytree_claims;
  created int;
begin
  insert into public.storytree_claims (story_id, task, owner, claimed_at, expires_at)
  values (p_story_id, p_task, p_owner, now(), now() + make_interval(secs => p_lease_seconds))
  on conflict (story_id, task) do nothing;
  get diagnostics created = row_count;
  if created = 1 then
    return null;
  end if;
  select * into held from public.storytree_claims where story_id = p_story_id and task = p_task for update;
  if held.owner <> p_owner and held.expires_at > now() then
    return jsonb_build_object('story_id', held.story_id, 'task', held.task, 'owner', held.owner,
                              'claimed_at', held.claimed_at, 'expires_at', held.expires_at);
  end if;
  update public.storytree_claims
     set owner = p_owner,
         claimed_at = case when held.owner = p_owner then held.claimed_at else now() end,
         expires_at = now() + make_interval(secs => p_lease_seconds)
   where story_id = p_story_id and task = p_task;
  return null;
end
$$;

create or replace function public.storytree_release(p_story_id uuid, p_task text, p_owner text default null)
returns jsonb language plpgsql volatile set search_path = '' as $$
declare
  gone public.storytree_claims;
begin
  delete from public.storytree_claims
   where story_id = p_story_id and task = p_task and (p_owner is null or owner = p_owner)
  returning * into gone;
  if gone.task is null then
    return null;
  end if;
  return jsonb_build_object('story_id', gone.story_id, 'task', gone.task, 'owner', gone.owner,
                            'claimed_at', gone.claimed_at, 'expires_at', gone.expires_at);
end
$$;

create or replace function public.storytree_live_claims(p_story_id uuid)
returns jsonb language sql stable set search_path = '' as $$
  select coalesce(jsonb_agg(jsonb_build_object('story_id', c.story_id, 'task', c.task, 'owner', c.owner,
                                               'claimed_at', c.claimed_at, 'expires_at', c.expires_at)), '[]'::jsonb)
    from public.storytree_claims c
   where c.story_id = p_story_id and c.expires_at > now();
$$;

create or replace function public.storytree_import_records(p_records jsonb, p_operations jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_records
  select * from jsonb_populate_recordset(null::public.storytree_records, coalesce(p_records, '[]'::jsonb))
  on conflict (story_id, task) do nothing;
  insert into public.storytree_operations
  select * from jsonb_populate_recordset(null::public.storytree_operations, coalesce(p_operations, '[]'::jsonb))
  on conflict (story_id, task) do nothing;
$$;

do $$
declare
  fn text;
begin
  foreach fn in array array[
      'public.storytree_put_record(jsonb)', 'public.storytree_mark_published(uuid, text)',
      'public.storytree_replace_records(uuid, text[], jsonb)', 'public.storytree_delete_record(uuid, text)',
      'public.storytree_put_operation(jsonb)', 'public.storytree_delete_operation(uuid, text)',
      'public.storytree_claim(uuid, text, text, double precision)', 'public.storytree_release(uuid, text, text)',
      'public.storytree_live_claims(uuid)', 'public.storytree_import_records(jsonb, jsonb)'] loop
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
    grant select, insert, update, delete on public.storytree_records, public.storytree_operations,
      public.storytree_claims to service_role;
  end if;
end
$$;

notify pgrst, 'reload schema';
