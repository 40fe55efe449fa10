-- A tenant's rights, granted table by table.  GRANT ... ON ALL TABLES IN
-- SCHEMA finds the schema's tables by reading the whole of pg_class,
-- which has no index on the namespace alone: at a thousand tenants
-- (40,000 relations) each such statement took 10-25 ms, and tenant
-- provisioning grew with the number of tenants.  pg_depend is indexed by
-- the object depended on, so the tables of one schema are found in
-- proportion to that schema's own objects (docs/performance.md).
CREATE FUNCTION public.crewd_schema_tables(p_schema text)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT string_agg(format('%I.%I', p_schema, c.relname), ', '
                      ORDER BY c.relname)
    FROM pg_depend d
    JOIN pg_class c ON c.oid = d.objid
    WHERE d.refclassid = 'pg_namespace'::regclass
      AND d.refobjid = (SELECT oid FROM pg_namespace
                        WHERE nspname = p_schema)
      AND d.classid = 'pg_class'::regclass
      AND d.deptype = 'n'
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')  -- ALL TABLES' kinds
$$;

REVOKE ALL ON FUNCTION public.crewd_schema_tables(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION public.crewd_grant_tenant(p_schema text)
    RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    s public.platform_settings;
    v_grantee name;
    v_tables text;
BEGIN
    IF p_schema !~ '^tenant_[0-9a-f]{16}$' THEN
        RAISE EXCEPTION 'not a tenant schema: "%"', p_schema;
    END IF;
    SELECT * INTO STRICT s FROM public.platform_settings;
    v_tables := public.crewd_schema_tables(p_schema);

    IF s.isolation = 'roles' THEN
        v_grantee := p_schema;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_grantee)
        THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_grantee);
        END IF;
        EXECUTE format('GRANT crewd_tenant TO %I', v_grantee);
        EXECUTE format('GRANT %I TO %I', v_grantee, s.app_role);
        IF v_tables IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON TABLE %s FROM %I', v_tables,
                s.app_role);
        END IF;
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', p_schema,
            s.app_role);
    ELSE
        v_grantee := s.app_role;
    END IF;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', p_schema, v_grantee);
    IF v_tables IS NOT NULL THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE'
            ' ON TABLE %s TO %I', v_tables, v_grantee);
    END IF;
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.schema_migrations'
        ' FROM %I', p_schema, v_grantee);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT,'
        ' INSERT, UPDATE, DELETE ON TABLES TO %I', p_schema, v_grantee);
END
$$;

REVOKE ALL ON FUNCTION public.crewd_grant_tenant(text) FROM PUBLIC;
