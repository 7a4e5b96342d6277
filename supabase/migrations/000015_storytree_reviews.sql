-- storytree-build: reviews of built assets (approved / rejected with a note), beside the records, so every teammate
-- sees them. A review holds for one exact file (output_sha256). Reads are plain selects; writes are RPCs.
-- Idempotent: safe to run again.

create table if not exists public.storytree_reviews (
  story_id uuid not null references public.stories (id) on delete cascade,
  task text not null,
  output_sha256 text not null,
  verdict text not null check (verdict in ('approved', 'rejected')),
  note text not null default '' check (char_length(note) <= 2000),
  reviewed_by text not null default '',
  reviewed_at text not null,
  primary key (story_id, task)
);

create or replace function public.storytree_put_review(p_review jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_reviews
  select * from jsonb_populate_record(null::public.storytree_reviews, p_review)
  on conflict (story_id, task) do update set
    output_sha256 = excluded.output_sha256, verdict = excluded.verdict, note = excluded.note,
    reviewed_by = excluded.reviewed_by, reviewed_at = excluded.reviewed_at;
$$;

create or replace function public.storytree_import_reviews(p_reviews jsonb)
returns void language sql volatile set search_path = '' as $$
  insert into public.storytree_reviews
  select * from jsonb_populate_recordset(null::public.storytree_reviews, coalesce(p_reviews, '[]'::jsonb))
  on conflict (story_id, task) do nothing;
$$;

-- A digest of every row of one story, computed where the rows are: the review page shows story text, so every build
-- asks whether it changed, without downloading the story.
create or replace function public.storytree_story_fingerprint(p_story_id uuid)
returns text language sql stable set search_path = '' as $$
  select md5(
    coalesce((select row_to_json(s)::text from public.stories s where s.id = p_story_id), '') || '|' ||
    coalesce((select string_agg(row_to_json(c)::text, '|' order by c.id) from public.scenelets c
              where c.story_id = p_story_id), '') || '|' ||
    coalesce((select string_agg(row_to_json(h)::text, '|' order by h.id) from public.shots h
              where h.story_id = p_story_id), ''));
$$;

do $$
declare
  fn text;
begin
  foreach fn in array array['public.storytree_put_review(jsonb)', 'public.storytree_import_reviews(jsonb)',
                            'public.storytree_story_fingerprint(uuid)'] loop
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
    grant select, insert, update, delete on public.storytree_reviews to service_role;
  end if;
end
$$;

notify pgrst, 'reload schema';
