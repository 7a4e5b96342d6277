-- storytree-build: the fingerprint of what a story's manifest is made from, so a build knows with one small call
-- whether `manifests/<story>.yaml` still matches the story. Like storytree_story_fingerprint (000015), but without
-- what a build writes back: the asset paths (shots' key_frame_image_path and video_file_path; image_path,
-- character_model_sheet_image_path and environment_reference_image_path at any depth of visual_design_document and
-- visual_reference_package) and updated_at. Mirrors SqliteStoryStore.manifest_fingerprint (store/ports.py: the
-- written-back keys). Idempotent: safe to run again.

create or replace function public.storytree_without_keys(doc jsonb, dropped text[])
returns jsonb language plpgsql immutable set search_path = '' as $$
begin  -- plpgsql: a recursive sql function could not be created (its body is checked before it exists)
  return case jsonb_typeof(doc)
    when 'object' then coalesce(
      (select jsonb_object_agg(e.key, public.storytree_without_keys(e.value, dropped))
         from jsonb_each(doc) e where not (e.key = any (dropped))), '{}'::jsonb)
    when 'array' then coalesce(
      (select jsonb_agg(public.storytree_without_keys(a.value, dropped) order by a.n)
         from jsonb_array_elements(doc) with ordinality a(value, n)), '[]'::jsonb)
    else doc
  end;
end
$$;

create or replace function public.storytree_manifest_fingerprint(p_story_id uuid)
returns text language sql stable set search_path = '' as $$
  with dropped(keys) as (
    select array['image_path', 'character_model_sheet_image_path', 'environment_reference_image_path']
  )
  select md5(
    coalesce((select ((to_jsonb(s) - 'updated_at') || jsonb_build_object(
                'visual_design_document', public.storytree_without_keys(s.visual_design_document, d.keys),
                'visual_reference_package', public.storytree_without_keys(s.visual_reference_package, d.keys)))::text
              from public.stories s, dropped d where s.id = p_story_id), '') || '|' ||
    coalesce((select string_agg(to_jsonb(c)::text, '|' order by c.id) from public.scenelets c
              where c.story_id = p_story_id), '') || '|' ||
    coalesce((select string_agg((to_jsonb(h) - 'key_frame_image_path' - 'video_file_path' - 'updated_at')::text,
                                '|' order by h.id)
              from public.shots h where h.story_id = p_story_id), ''));
$$;

do $$
declare
  fn text;
begin
  foreach fn in array array['public.storytree_without_keys(jsonb, text[])',
                            'public.storytree_manifest_fingerprint(uuid)'] loop
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
end
$$;

notify pgrst, 'reload schema';
