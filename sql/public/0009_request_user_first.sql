-- The token's user, looked up before the tenant switch rather than
-- after it (fcgi/worker.c, fcgi/tenant_reset.c).  PostgreSQL analyses a
-- statement again whenever the search path differs from the one it was
-- prepared under, and after the switch it always does; run first, under
-- the session's own path, the call keeps its plan for the life of the
-- connection.  The tenant is therefore a parameter, not the
-- transaction's setting, and the function answers for that tenant only.
-- Two OUT parameters and no RETURN QUERY: one row, no tuplestore.
--
-- Measured with pgbench on the request's own SQL, 100 tenants, 8
-- clients: 0.24 ms of PostgreSQL CPU per request with the lookup after
-- the switch, 0.19-0.20 ms with it first (docs/performance.md).
-- The two-argument function of 0008 stays: workers of the previous
-- release call it until they are restarted after the migration.

CREATE FUNCTION public.crewd_request_user(p_tenant uuid, p_user uuid,
    p_version integer, OUT role text, OUT audit_reads boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    SELECT u.role::text, t.audit_reads INTO role, audit_reads
    FROM public.users u
    JOIN public.tenants t ON t.id = u.tenant_id
    WHERE u.id = p_user
      AND u.tenant_id = p_tenant
      AND u.is_active AND u.token_version = p_version;
END
$$;

REVOKE ALL ON FUNCTION public.crewd_request_user(uuid, uuid, integer)
    FROM PUBLIC;

-- The application role calls it before it takes the tenant's role, so
-- the grant goes to it, with the template schema's names; the rest of
-- the platform grants are unchanged.
CREATE OR REPLACE FUNCTION public.crewd_grant_platform() RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    s public.platform_settings;
BEGIN
    SELECT * INTO STRICT s FROM public.platform_settings;

    GRANT SELECT ON public.users TO crewd_tenant;
    GRANT INSERT (tenant_id, email, password_hash, full_name, role,
                  is_active), UPDATE, DELETE ON public.users TO crewd_tenant;
    GRANT SELECT, UPDATE (name, audit_reads, updated_at,
                          execution_log_ttl_days, chat_message_ttl_days,
                          mongo_provisioned_at)
        ON public.tenants TO crewd_tenant;

    EXECUTE format('GRANT SELECT, UPDATE (mongo_provisioned_at)'
        ' ON public.tenants TO %I', s.app_role);
    EXECUTE format('GRANT SELECT ON public.master_key_canary,'
        ' public.platform_settings TO %I', s.app_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
        ' public.crewd_create_tenant(uuid, text, text, text) TO %I',
        s.app_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
        ' public.crewd_request_user(uuid, uuid, integer) TO %I',
        s.app_role);
    -- The names of the template's tables, not their rows (it has none,
    -- and no table of it is granted): the application role's session
    -- path is the template, so that a statement sent ahead of the tenant
    -- switch can be prepared (lib/db.c, session_setup).
    -- Made here when this runs first, before the template's migrations.
    CREATE SCHEMA IF NOT EXISTS tenant_template;
    EXECUTE format('GRANT USAGE ON SCHEMA tenant_template TO %I',
        s.app_role);

    -- In the schema mode the application role is every tenant at once.
    IF s.isolation = 'roles' THEN
        EXECUTE format('REVOKE crewd_tenant FROM %I', s.app_role);
        EXECUTE format('ALTER ROLE %I NOINHERIT', s.app_role);
    ELSE
        EXECUTE format('GRANT crewd_tenant TO %I', s.app_role);
        EXECUTE format('ALTER ROLE %I INHERIT', s.app_role);
    END IF;
END
$$;

REVOKE ALL ON FUNCTION public.crewd_grant_platform() FROM PUBLIC;
