-- storytree-build: the Supabase role set and the grants the story tables need.
--
-- On a hosted Supabase project these roles already exist (the role checks below are then no-ops) and the
-- grants are already in place; on a plain local Postgres (tests, CI) this creates the same role set so a
-- bare PostgREST behaves like Supabase's API gateway:
--   anon, authenticated  request roles without access to the story tables
--   service_role         what SUPABASE_SERVICE_ROLE_KEY maps to; bypasses RLS
--   authenticator        the login role PostgREST connects as; switches to the role named in the JWT
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

grant usage on schema public to anon, authenticated, service_role;

-- Only the service role touches story data (the original system has no RLS policies and always uses the
-- service-role key).
grant select, insert, update, delete on table public.stories, public.scenelets, public.shots to service_role;
