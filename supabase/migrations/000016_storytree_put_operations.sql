-- storytree-build: several in-flight operations written in one transaction. A batch image job covers many targets;
-- its job name must be recorded for all of them or for none, before anything is polled.
-- Idempotent: safe to run again.

create or replace function public.storytree_put_operations(p_operations jsonb)
returns void language plpgsql volatile set search_path = '' as $$
declare
  item jsonb;
begin
  for item in select * from jsonb_array_elements(coalesce(p_operations, '[]'::jsonb)) loop
    perform public.storytree_put_operation(item);
  end loop;
end
$$;

do $$
begin
  revoke all on function public.storytree_put_operations(jsonb) from public;
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke all on function public.storytree_put_operations(jsonb) from anon;
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    revoke all on function public.storytree_put_operations(jsonb) from authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function public.storytree_put_operations(jsonb) to service_role;
  end if;
end
$$;

notify pgrst, 'reload schema';
