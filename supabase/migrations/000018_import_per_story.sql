-- storytree-build: an import never moves another story's rows (POST /rest/v1/rpc/import_story_rows).
-- Idempotent: safe to run again. Replaces the function of 000013 (same signature, same path keeping).
--
-- Why: rows are upserted by id, so a copy of a story imported under a new story id whose scenelet and shot rows
-- kept the original's ids re-parented those rows: the original lost its tree, its shot targets and its paid paths.
-- Now a scenelet or shot row whose id belongs to another story is refused with errcode PT409 (PostgREST answers
-- HTTP 409); the detail lists every such row as JSON [{"table", "id", "story_id", "display_name"}], which the
-- adapter (storytree_build/store/supabase_stories.py) turns into the same message as the SQLite store.
-- The check runs before anything is written; the upserts' `where <table>.story_id = excluded.story_id` guards
-- against a concurrent import that adds such a row after the check (the skipped row is then reported the same way).

-- The stored rows whose ids the incoming rows use under another story, with the story they belong to.
create or replace function public.storytree_foreign_rows(p_scenelets jsonb, p_shots jsonb)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('table', f.table_name, 'id', f.id, 'story_id', f.story_id,
                                               'display_name', f.display_name)
                            order by f.table_name, f.id), '[]'::jsonb)
    from (
      select 'scenelets' as table_name, s.id, s.story_id, st.display_name
        from jsonb_to_recordset(coalesce(p_scenelets, '[]'::jsonb)) as x(id uuid, story_id uuid)
        join public.scenelets s on s.id = x.id
        join public.stories st on st.id = s.story_id
       where s.story_id is distinct from x.story_id
      union all
      select 'shots', s.id, s.story_id, st.display_name
        from jsonb_to_recordset(coalesce(p_shots, '[]'::jsonb)) as x(id uuid, story_id uuid)
        join public.shots s on s.id = x.id
        join public.stories st on st.id = s.story_id
       where s.story_id is distinct from x.story_id
    ) as f
$$;

create or replace function public.import_story_rows(p_stories jsonb, p_scenelets jsonb, p_shots jsonb)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
  r record;
  old record;
  new_id uuid;
  foreign_rows jsonb;
  written bigint;
  guard_tripped boolean := false;
begin
  foreign_rows := public.storytree_foreign_rows(p_scenelets, p_shots);
  if jsonb_array_length(foreign_rows) > 0 then
    raise exception 'storytree: rows of another story' using errcode = 'PT409', detail = foreign_rows::text,
      hint = 'Give the copy fresh row ids (storytree import --new-ids FILE) or import it into the story that owns them.';
  end if;

  insert into public.stories (id, display_name, initial_prompt, story_constitution, visual_design_document,
                              audio_design_document, visual_reference_package, created_at, updated_at)
  select x.id, x.display_name, x.initial_prompt, x.story_constitution, x.visual_design_document,
         x.audio_design_document, x.visual_reference_package, x.created_at, x.updated_at
    from jsonb_to_recordset(coalesce(p_stories, '[]'::jsonb)) as x(
      id uuid, display_name text, initial_prompt text, story_constitution jsonb, visual_design_document jsonb,
      audio_design_document jsonb, visual_reference_package jsonb, created_at timestamptz, updated_at timestamptz)
  on conflict (id) do update set
    display_name = excluded.display_name,
    initial_prompt = excluded.initial_prompt,
    story_constitution = public.storytree_keep_asset_paths(stories.story_constitution, excluded.story_constitution),
    visual_design_document =
      public.storytree_keep_asset_paths(stories.visual_design_document, excluded.visual_design_document),
    audio_design_document =
      public.storytree_keep_asset_paths(stories.audio_design_document, excluded.audio_design_document),
    visual_reference_package =
      public.storytree_keep_asset_paths(stories.visual_reference_package, excluded.visual_reference_package),
    created_at = excluded.created_at,
    updated_at = excluded.updated_at;

  insert into public.scenelets (id, story_id, parent_id, choice_label_from_parent, choice_prompt, content,
                                is_branch_point, is_terminal_node, branch_audio_file_path, created_at)
  select x.id, x.story_id, x.parent_id, x.choice_label_from_parent, x.choice_prompt, x.content,
         coalesce(x.is_branch_point, false), coalesce(x.is_terminal_node, false), x.branch_audio_file_path,
         x.created_at
    from jsonb_to_recordset(coalesce(p_scenelets, '[]'::jsonb)) as x(
      id uuid, story_id uuid, parent_id uuid, choice_label_from_parent text, choice_prompt text, content jsonb,
      is_branch_point boolean, is_terminal_node boolean, branch_audio_file_path text, created_at timestamptz)
  on conflict (id) do update set
    parent_id = excluded.parent_id,
    choice_label_from_parent = excluded.choice_label_from_parent, choice_prompt = excluded.choice_prompt,
    content = excluded.content, is_branch_point = excluded.is_branch_point,
    is_terminal_node = excluded.is_terminal_node,
    branch_audio_file_path = coalesce(nullif(excluded.branch_audio_file_path, ''), scenelets.branch_audio_file_path),
    created_at = excluded.created_at
  where scenelets.story_id = excluded.story_id;  -- a row of another story is never moved
  get diagnostics written = row_count;
  guard_tripped := written < jsonb_array_length(coalesce(p_scenelets, '[]'::jsonb));

  -- Shots: the natural key (story, scenelet id, shot index) wins over the row id, as in the SQLite store; the paths
  -- of a shot replaced under a new id stay unless the new row brings its own.
  for r in select * from jsonb_to_recordset(coalesce(p_shots, '[]'::jsonb)) as x(
      id uuid, story_id uuid, scenelet_ref uuid, scenelet_id text, scenelet_sequence integer, shot_index integer,
      storyboard_payload jsonb, key_frame_image_path text, audio_file_path text, video_file_path text,
      created_at timestamptz, updated_at timestamptz) loop
    exit when guard_tripped;
    select s.id, s.key_frame_image_path, s.audio_file_path, s.video_file_path into old
      from public.shots s
     where s.story_id = r.story_id and s.scenelet_id = r.scenelet_id and s.shot_index = r.shot_index
     for update;
    new_id := coalesce(r.id, old.id, gen_random_uuid());
    if old.id is not null and old.id <> new_id then
      delete from public.shots where id = old.id;
    end if;
    insert into public.shots (id, story_id, scenelet_ref, scenelet_id, scenelet_sequence, shot_index,
                              storyboard_payload, key_frame_image_path, audio_file_path, video_file_path,
                              created_at, updated_at)
    values (new_id, r.story_id, r.scenelet_ref, r.scenelet_id, r.scenelet_sequence, r.shot_index,
            r.storyboard_payload,
            coalesce(nullif(r.key_frame_image_path, ''), old.key_frame_image_path),
            coalesce(nullif(r.audio_file_path, ''), old.audio_file_path),
            coalesce(nullif(r.video_file_path, ''), old.video_file_path),
            coalesce(r.created_at, timezone('utc', now())), coalesce(r.updated_at, timezone('utc', now())))
    on conflict (id) do update set
      scenelet_ref = excluded.scenelet_ref, scenelet_id = excluded.scenelet_id,
      scenelet_sequence = excluded.scenelet_sequence, shot_index = excluded.shot_index,
      storyboard_payload = excluded.storyboard_payload,
      key_frame_image_path = coalesce(nullif(excluded.key_frame_image_path, ''), shots.key_frame_image_path),
      audio_file_path = coalesce(nullif(excluded.audio_file_path, ''), shots.audio_file_path),
      video_file_path = coalesce(nullif(excluded.video_file_path, ''), shots.video_file_path),
      created_at = excluded.created_at, updated_at = excluded.updated_at
    where shots.story_id = excluded.story_id;  -- a row of another story is never moved
    get diagnostics written = row_count;
    guard_tripped := written = 0;
  end loop;

  if guard_tripped then
    -- A concurrent import stored one of these ids under another story after the check above: refuse the whole
    -- import (the exception rolls back every row written here).
    raise exception 'storytree: rows of another story' using errcode = 'PT409',
      detail = public.storytree_foreign_rows(p_scenelets, p_shots)::text,
      hint = 'Give the copy fresh row ids (storytree import --new-ids FILE) or import it into the story that owns them.';
  end if;
end
$$;

revoke all on function public.storytree_foreign_rows(jsonb, jsonb) from public;
revoke all on function public.import_story_rows(jsonb, jsonb, jsonb) from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    execute 'revoke all on function public.storytree_foreign_rows(jsonb, jsonb) from anon';
    execute 'revoke all on function public.import_story_rows(jsonb, jsonb, jsonb) from anon';
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute 'revoke all on function public.storytree_foreign_rows(jsonb, jsonb) from authenticated';
    execute 'revoke all on function public.import_story_rows(jsonb, jsonb, jsonb) from authenticated';
  end if;
end
$$;
grant execute on function public.storytree_foreign_rows(jsonb, jsonb) to service_role;
grant execute on function public.import_story_rows(jsonb, jsonb, jsonb) to service_role;

notify pgrst, 'reload schema';
