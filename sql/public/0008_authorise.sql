-- The token's user, as every authenticated request checks it
-- (fcgi/worker.c): still there, active, at the token's version, and with
-- which role now; and whether the tenant audits reads, read in the
-- request's own transaction so that a change of the setting holds from
-- the next request on, whichever worker serves it.  A function, because its plan is then made once per
-- connection: the same query written in the request is planned again at
-- every request, since the role and the search path change from tenant
-- to tenant, and with row-level security that planning costs several
-- times the lookup.  It answers for the request's own tenant only
-- (crewd.tenant_id), so it reveals nothing a tenant's role could not
-- read itself.
CREATE FUNCTION public.crewd_request_user(p_user uuid, p_version integer)
    RETURNS TABLE (role text, audit_reads boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RETURN QUERY
        SELECT u.role::text, t.audit_reads
        FROM public.users u
        JOIN public.tenants t ON t.id = u.tenant_id
        WHERE u.id = p_user
          AND u.tenant_id = public.current_tenant_id()
          AND u.is_active AND u.token_version = p_version;
END
$$;

REVOKE ALL ON FUNCTION public.crewd_request_user(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.crewd_request_user(uuid, integer)
    TO crewd_tenant;
