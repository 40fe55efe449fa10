-- The audit shipper's sweep (fcgi/shipper.c): which tenants have audit
-- entries waiting in their outbox, for what arrived while no shipper
-- listened.  The shipper runs as the application role, which in the
-- roles mode holds no right on a tenant's schema outside that tenant's
-- role: its own query of every outbox was refused ("permission denied
-- for schema"), and only notifications ever got entries shipped.  This
-- function can look; it answers tenant ids, never what the entries hold.
-- One statement per hundred tenants, each an EXISTS on an index.
CREATE FUNCTION public.crewd_outboxes_waiting()
    RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    chunk text;
BEGIN
    FOR chunk IN
        SELECT string_agg(format('SELECT %L::uuid WHERE EXISTS'
                                 ' (SELECT 1 FROM %I.audit_outbox)',
                                 id, db_schema), ' UNION ALL ')
        FROM (SELECT t.id, t.db_schema,
                     (row_number() OVER (ORDER BY t.id) - 1) / 100 AS n
              FROM public.tenants t
              WHERE to_regclass(format('%I.audit_outbox', t.db_schema))
                    IS NOT NULL) waiting
        GROUP BY n
        ORDER BY n
    LOOP
        RETURN QUERY EXECUTE chunk;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION public.crewd_outboxes_waiting() FROM PUBLIC;

-- The platform grants of 0009, and this function's to the application
-- role.
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
    EXECUTE format('GRANT EXECUTE ON FUNCTION'
        ' public.crewd_outboxes_waiting() TO %I', s.app_role);
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
