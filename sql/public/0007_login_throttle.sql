-- Failed logins per account, shared by every worker and host
-- (handlers/auth.c, docs/architecture.md).
--
-- One row per tenant and normalised (lower-cased) e-mail that failed a
-- login recently, whether or not a user has that e-mail: the answer
-- must not tell which accounts exist.  failures counts the failures
-- since window_start; the one that reaches login_max_failures within
-- login_failure_window seconds sets locked_until, and until then a login
-- for that e-mail answers 429 without looking at the password.  A
-- successful login deletes the row; failed logins delete their tenant's
-- rows whose window and lock are over, so the table stays small.
--
-- Every query names tenant_id, so a row-level security policy on it can
-- keep each tenant to its own rows.

CREATE TABLE public.login_throttle (
    tenant_id uuid NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    email varchar(255) NOT NULL,
    failures integer NOT NULL CHECK (failures > 0),
    window_start timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    PRIMARY KEY (tenant_id, email)
);

CREATE INDEX idx_login_throttle_window
    ON public.login_throttle (tenant_id, window_start);

-- A tenant's request sees and changes its own rows only
-- (docs/isolation.md); the owner, who owns the table, is not bound.
ALTER TABLE public.login_throttle ENABLE ROW LEVEL SECURITY;
CREATE POLICY login_throttle_of_the_tenant ON public.login_throttle
    USING (tenant_id = public.current_tenant_id())
    WITH CHECK (tenant_id = public.current_tenant_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON public.login_throttle
    TO crewd_tenant;
