-- storytree-build: import a story export in one transaction, never erasing asset paths a build wrote back
-- (POST /rest/v1/rpc/import_story_rows). Idempotent: safe to run again.
--
-- Why: re-importing an export (which carries no paths, or older ones) over a built story used to set every
-- asset path to null, and an import while a build ran lost the paths written meanwhile. Here every stored,
-- non-empty asset path survives an incoming empty one, inside the same row lock as the build's own writes
-- (INSERT ... ON CONFLICT re-evaluates against the newest row version), so nothing is lost.

-- Mirrors storytree_build/store/base.py keep_asset_paths: keys ending in _path or Path; lists by position;
-- entries only when their identity keys agree.
create or replace function public.storytree_keep_asset_paths(stored jsonb, incoming jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  result jsonb;
  k text;
  v jsonb;
  i int;
begin
  if stored is null or incoming is null then
    return incoming;
  end if;
  if jsonb_typeof(stored) = 'object' and jsonb_typeof(incoming) = 'object' then
    foreach k in array array['character_id', 'characterId', 'environment_id', 'environmentId', 'type', 'plate_type',
                             'character_name', 'characterName', 'environment_name', 'environmentName'] loop
      if stored ? k and incoming ? k and stored -> k <> incoming -> k then
        return incoming;
      end if;
    end loop;
    result := incoming;
    for k, v in select * from jsonb_each(stored) loop
      if (right(k, 5) = '_path' or right(k, 4) = 'Path')
         and jsonb_typeof(v) = 'string' and btrim(v #>> '{}') <> ''
         and (not (incoming ? k) or jsonb_typeof(incoming -> k) <> 'string' or btrim(incoming ->> k) = '') then
        result := jsonb_set(result, array[k], v, true);
      elsif incoming ? k and jsonb_typeof(incoming -> k) in ('object', 'array') then
        result := jsonb_set(result, array[k], public.storytree_keep_asset_paths(v, incoming -> k), true);
      end if;
    end loop;
    return result;
  end if;
  if jsonb_typeof(stored) = 'array' and jsonb_typeof(incoming) = 'array' then
    result := '[]'::jsonb;
    for i in 0 .. jsonb_array_length(incoming) - 1 loop
      if i < jsonb_array_length(stored) then
        result := result || jsonb_build_array(public.storytree_keep_asset_paths(stored -> i, incoming -> i));
      else
        result := result || jsonb_build_array(incoming -> i);
      end if;
    end loop;
    return result;
  end if;
  return incoming;
end
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
begin
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
    story_id = excluded.story_id, parent_id = excluded.parent_id,
    choice_label_from_parent = excluded.choice_label_from_parent, choice_prompt = excluded.choice_prompt,
    content = excluded.content, is_branch_point = excluded.is_branch_point,
    is_terminal_node = excluded.is_terminal_node,
    branch_audio_file_path = coalesce(nullif(excluded.branch_audio_file_path, ''), scenelets.branch_audio_file_path),
    created_at = excluded.created_at;

  -- Shots: the natural key (story, scenelet id, shot index) wins over the row id, as in the SQLite store; the paths
  -- of a shot replaced under a new id stay unless the new row brings its own.
  for r in select * from jsonb_to_recordset(coalesce(p_shots, '[]'::jsonb)) as x(
      id uuid, story_id uuid, scenelet_ref uuid, scenelet_id text, scenelet_sequence integer, shot_index integer,
      storyboard_payload jsonb, key_frame_image_path text, audio_file_path text, video_file_path text,
      created_at timestamptz, updated_at timestamptz) loop
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
      story_id = excluded.story_id, scenelet_ref = excluded.scenelet_ref, scenelet_id = excluded.scenelet_id,
      scenelet_sequence = excluded.scenelet_sequence, shot_index = excluded.shot_index,
      storyboard_payload = excluded.storyboard_payload,
      key_frame_image_path = coalesce(nullif(excluded.key_frame_image_path, ''), shots.key_frame_image_path),
      audio_file_path = coalesce(nullif(excluded.audio_file_path, ''), shots.audio_file_path),
      video_file_path = coalesce(nullif(excluded.video_file_path, ''), shots.video_file_path),
      created_at = excluded.created_at, updated_at = excluded.updated_at;
  end loop;
end
$$;

revoke all on function public.storytree_keep_asset_paths(jsonb, jsonb) from public;
revoke all on function public.import_story_rows(jsonb, jsonb, jsonb) from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    execute 'revoke all on function public.storytree_keep_asset_paths(jsonb, jsonb) from anon';
    execute 'revoke all on function public.import_story_rows(jsonb, jsonb, jsonb) from anon';
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute 'revoke all on function public.storytree_keep_asset_paths(jsonb, jsonb) from authenticated';
    execute 'revoke all on function public.import_story_rows(jsonb, jsonb, jsonb) from authenticated';
  end if;
end
$$;
grant execute on function public.storytree_keep_asset_paths(jsonb, jsonb) to service_role;
grant execute on function public.import_story_rows(jsonb, jsonb, jsonb) to service_role;

notify pgrst, 'reload schema';
