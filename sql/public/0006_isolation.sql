-- Isolation the database enforces (docs/isolation.md).
--
-- crewd's workers connect as an application role that owns nothing.  In
-- the "roles" isolation mode (the default) every tenant has its own
-- NOLOGIN role with rights on its own schema alone, and a request runs
-- as that role; in the "schema" mode, for distributed engines that
-- cannot use NOLOGIN roles, the application role itself has the rights
-- and the search path keeps requests apart.  In both, public.users and
-- public.tenants show a request its own tenant's rows only, by
-- row-level security keyed on the transaction-local setting
-- crewd.tenant_id.
--
-- Everything here runs as the owner role (crewctl db migrate).  Tenants
-- are made by crewd_create_tenant(), the one thing the application role
-- may do as the owner: it cannot run any other DDL.

-- Which mode, and which role crewd's workers log in as.  Written by
-- crewctl db migrate from crewd.conf; crewd refuses to start when its
-- own configuration disagrees.
CREATE TABLE public.platform_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    isolation text NOT NULL CHECK (isolation IN ('roles', 'schema')),
    app_role name NOT NULL
);

-- The tenant migrations, as compiled into crewctl (sql/migrations/), so that
-- crewd_create_tenant() builds a new schema from the same text as
-- crewctl migrates the others with.  crewctl db migrate writes them.
CREATE TABLE public.tenant_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    up_sql text NOT NULL,
    down_sql text NOT NULL
);

-- The request's tenant; NULL outside a tenant's request.  A setting
-- reads as '' after the transaction that set it, hence the nullif.
CREATE FUNCTION public.current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('crewd.tenant_id', true), '')::uuid $$;

-- The owner owns these tables, so the policies never apply to it.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_of_the_tenant ON public.users
    USING (tenant_id = public.current_tenant_id())
    WITH CHECK (tenant_id = public.current_tenant_id());

-- Outside a tenant's request the application role resolves host names
-- to tenants and records their MongoDB collections; within one, only
-- the tenant's own row.  Column privileges decide what may change.
ALTER TABLE public.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenants_read ON public.tenants FOR SELECT
    USING (public.current_tenant_id() IS NULL
           OR id = public.current_tenant_id());
CREATE POLICY tenants_update ON public.tenants FOR UPDATE
    USING (public.current_tenant_id() IS NULL
           OR id = public.current_tenant_id());

-- Brings one schema to version target (the newest when NULL), up or
-- down, inside the caller's transaction.  Returns the number of
-- migrations applied or undone.
CREATE FUNCTION public.crewd_migrate_schema(p_schema text,
    p_target integer DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_current integer;
    v_done integer := 0;
    m record;
BEGIN
    IF p_schema IS DISTINCT FROM 'tenant_template'
       AND p_schema !~ '^tenant_[0-9a-f]{16}$' THEN
        RAISE EXCEPTION 'refusing to migrate schema "%"', p_schema;
    END IF;
    IF p_target IS NULL THEN
        SELECT coalesce(max(version), 0) INTO p_target
            FROM public.tenant_migrations;
    END IF;

    -- Unqualified names in the migrations now mean this schema.
    PERFORM set_config('search_path', p_schema, true);
    IF to_regclass(quote_ident(p_schema) || '.schema_migrations') IS NULL
    THEN
        EXECUTE format('CREATE TABLE %I.schema_migrations ('
            ' version integer PRIMARY KEY, name text NOT NULL,'
            ' applied_at timestamptz NOT NULL DEFAULT now())', p_schema);
    END IF;
    EXECUTE format('SELECT coalesce(max(version), 0)'
        ' FROM %I.schema_migrations', p_schema) INTO v_current;

    FOR m IN SELECT * FROM public.tenant_migrations
             WHERE version > v_current AND version <= p_target
             ORDER BY version LOOP
        EXECUTE m.up_sql;
        EXECUTE format('INSERT INTO %I.schema_migrations (version, name)'
            ' VALUES ($1, $2)', p_schema) USING m.version, m.name;
        v_done := v_done + 1;
    END LOOP;

    FOR m IN SELECT * FROM public.tenant_migrations
             WHERE version <= v_current AND version > p_target
             ORDER BY version DESC LOOP
        EXECUTE m.down_sql;
        EXECUTE format('DELETE FROM %I.schema_migrations'
            ' WHERE version = $1', p_schema) USING m.version;
        v_done := v_done + 1;
    END LOOP;
    RETURN v_done;
END
$$;

-- Gives a tenant schema's rights to whoever the mode says: the tenant's
-- own role (made here when missing) or the application role.  The
-- rights are exactly what the handlers need: rows of the tables, no
-- DDL, no TRUNCATE, no triggers; schema_migrations read-only.
CREATE FUNCTION public.crewd_grant_tenant(p_schema text) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    s public.platform_settings;
    v_grantee name;
BEGIN
    IF p_schema !~ '^tenant_[0-9a-f]{16}$' THEN
        RAISE EXCEPTION 'not a tenant schema: "%"', p_schema;
    END IF;
    SELECT * INTO STRICT s FROM public.platform_settings;

    IF s.isolation = 'roles' THEN
        v_grantee := p_schema;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_grantee)
        THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_grantee);
        END IF;
        EXECUTE format('GRANT crewd_tenant TO %I', v_grantee);
        EXECUTE format('GRANT %I TO %I', v_grantee, s.app_role);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I',
            p_schema, s.app_role);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', p_schema,
            s.app_role);
    ELSE
        v_grantee := s.app_role;
    END IF;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', p_schema, v_grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE'
        ' ON ALL TABLES IN SCHEMA %I TO %I', p_schema, v_grantee);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.schema_migrations'
        ' FROM %I', p_schema, v_grantee);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT,'
        ' INSERT, UPDATE, DELETE ON TABLES TO %I', p_schema, v_grantee);
END
$$;

-- The application role's own rights, and crewd_tenant's, for the mode.
CREATE FUNCTION public.crewd_grant_platform() RETURNS void
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

-- A new tenant: its row, its schema built by the tenant migrations, its
-- role and rights.  The one function the application role may run as
-- the owner; everything it is given is checked here or by the table.
CREATE FUNCTION public.crewd_create_tenant(p_id uuid, p_name text,
    p_slug text, p_schema text) RETURNS timestamptz
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_created timestamptz;
BEGIN
    IF p_schema !~ '^tenant_[0-9a-f]{16}$' THEN
        RAISE EXCEPTION 'not a tenant schema: "%"', p_schema;
    END IF;
    INSERT INTO public.tenants (id, name, slug, db_schema)
        VALUES (p_id, p_name, p_slug, p_schema)
        RETURNING created_at INTO v_created;
    EXECUTE format('CREATE SCHEMA %I', p_schema);

    -- To the template's version, which is the newest migration unless
    -- an operator rolled back (crewctl migrate --to).
    PERFORM public.crewd_migrate_schema(p_schema,
        (SELECT coalesce(max(version), 0)
         FROM tenant_template.schema_migrations));
    PERFORM public.crewd_grant_tenant(p_schema);
    RETURN v_created;
END
$$;

-- The tenant's role goes with its schema (crewctl tenant delete).
CREATE FUNCTION public.crewd_drop_tenant_role(p_schema text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF p_schema !~ '^tenant_[0-9a-f]{16}$' THEN
        RAISE EXCEPTION 'not a tenant schema: "%"', p_schema;
    END IF;
    EXECUTE format('DROP ROLE IF EXISTS %I', p_schema);
END
$$;

REVOKE ALL ON FUNCTION public.crewd_migrate_schema(text, integer),
    public.crewd_grant_tenant(text), public.crewd_grant_platform(),
    public.crewd_create_tenant(uuid, text, text, text),
    public.crewd_drop_tenant_role(text)
    FROM PUBLIC;

-- Every schema's version, the template's among them, in one query
-- (crewctl migrate and migrate status).
CREATE FUNCTION public.crewd_schema_versions()
    RETURNS TABLE (schema_name text, version integer)
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    FOR schema_name IN
        SELECT 'tenant_template'
        UNION ALL
        SELECT db_schema FROM public.tenants
    LOOP
        IF to_regclass(quote_ident(schema_name) || '.schema_migrations')
           IS NULL THEN
            version := 0;
        ELSE
            EXECUTE format('SELECT coalesce(max(version), 0)'
                ' FROM %I.schema_migrations', schema_name) INTO version;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- What a schema is made of, one row per table, column, index, constraint
-- and trigger, with the schema's own name taken out of the definitions,
-- so that two schemas built alike describe alike (crewctl migrate check).
CREATE FUNCTION public.crewd_describe_schema(p_schema text)
    RETURNS TABLE (object text, definition text)
    LANGUAGE sql STABLE
    AS $$
    WITH rel AS (
        SELECT c.oid, c.relname
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = p_schema AND c.relkind IN ('r', 'p')
    ), described (object, definition) AS (
        SELECT 'table ' || rel.relname, ''
        FROM rel
        UNION ALL
        SELECT 'column ' || rel.relname || '.' || a.attname,
               pg_catalog.format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default '
                           || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
        FROM rel
        JOIN pg_catalog.pg_attribute a
            ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_catalog.pg_attrdef d
            ON d.adrelid = rel.oid AND d.adnum = a.attnum
        UNION ALL
        SELECT 'index ' || i.relname, pg_catalog.pg_get_indexdef(i.oid)
        FROM rel
        JOIN pg_catalog.pg_index x ON x.indrelid = rel.oid
        JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
        UNION ALL
        SELECT 'constraint ' || rel.relname || '.' || k.conname,
               pg_catalog.pg_get_constraintdef(k.oid)
        FROM rel
        JOIN pg_catalog.pg_constraint k ON k.conrelid = rel.oid
        UNION ALL
        SELECT 'trigger ' || rel.relname || '.' || t.tgname,
               pg_catalog.pg_get_triggerdef(t.oid)
        FROM rel
        JOIN pg_catalog.pg_trigger t
            ON t.tgrelid = rel.oid AND NOT t.tgisinternal
    )
    SELECT object, replace(definition, p_schema || '.', '')
    FROM described
    $$;

-- Where a schema differs from tenant_template: 'missing' (the template
-- has it, the schema not), 'extra' (the other way) or 'differs'.
CREATE FUNCTION public.crewd_schema_drift(p_schema text)
    RETURNS TABLE (change text, object text, definition text)
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN s.object IS NULL THEN 'missing'
                WHEN t.object IS NULL THEN 'extra'
                ELSE 'differs' END,
           coalesce(s.object, t.object),
           coalesce(s.definition, t.definition)
    FROM public.crewd_describe_schema('tenant_template') t
    FULL JOIN public.crewd_describe_schema(p_schema) s
        ON s.object = t.object
    WHERE s.definition IS DISTINCT FROM t.definition
    ORDER BY 2
    $$;

REVOKE ALL ON FUNCTION public.crewd_schema_versions(),
    public.crewd_describe_schema(text), public.crewd_schema_drift(text)
    FROM PUBLIC;
