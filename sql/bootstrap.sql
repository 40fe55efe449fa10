-- The roles and the database crewd runs on: run once, by a superuser,
-- before the first "crewctl db migrate":
--
--     psql -X -v ON_ERROR_STOP=1 -U postgres -d postgres \
--          -f /usr/share/crewd/bootstrap.sql
--
-- Three roles (docs/isolation.md tells why each exists):
--
--   crewd_owner   LOGIN.  Owns the database, the public tables and every
--                 tenant schema.  crewctl connects as it to migrate, to
--                 create and delete tenants; no request ever uses it.
--                 CREATEROLE, to make and drop the tenants' roles.
--   crewd         LOGIN NOINHERIT.  The role crewd's workers connect as.
--                 It owns nothing and has no right on any tenant schema
--                 itself: per request it becomes the tenant's role, which
--                 it is a member of.  NOINHERIT keeps it from holding the
--                 rights of every tenant at once.
--   crewd_tenant  NOLOGIN.  What every tenant role shares: its rows of
--                 public.users and public.tenants, under row-level
--                 security.
--
-- Each tenant then gets its own NOLOGIN role, made with its schema.
-- Other names: psql -v app_role=... -v owner_role=... -v dbname=...

\if :{?app_role}
\else
\set app_role crewd
\endif
\if :{?owner_role}
\else
\set owner_role crewd_owner
\endif
\if :{?dbname}
\else
\set dbname crewd
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner_role')
    AS make_owner \gset
\if :make_owner
CREATE ROLE :"owner_role" LOGIN CREATEROLE;
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role')
    AS make_app \gset
\if :make_app
CREATE ROLE :"app_role" LOGIN NOINHERIT;
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crewd_tenant')
    AS make_group \gset
\if :make_group
CREATE ROLE crewd_tenant NOLOGIN;
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname')
    AS make_db \gset
\if :make_db
CREATE DATABASE :"dbname" OWNER :"owner_role" ENCODING 'UTF8'
    TEMPLATE template0;
\endif

\connect :"dbname"

-- An installation from before the owner role: what the application role
-- made becomes the owner's (nothing happens when it owns nothing).
REASSIGN OWNED BY :"app_role" TO :"owner_role";
ALTER DATABASE :"dbname" OWNER TO :"owner_role";

-- Nobody but the owner creates anything, temporary tables included: a
-- temporary table made in one tenant's request would outlive it.
REVOKE CREATE, TEMPORARY ON DATABASE :"dbname" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO :"owner_role";
GRANT CONNECT ON DATABASE :"dbname" TO :"app_role";

-- Session-level advisory locks outlive the transaction, and so the
-- tenant that took them.  The transaction-level ones stay.
REVOKE EXECUTE ON FUNCTION
    pg_advisory_lock(bigint), pg_advisory_lock(integer, integer),
    pg_advisory_lock_shared(bigint),
    pg_advisory_lock_shared(integer, integer),
    pg_try_advisory_lock(bigint), pg_try_advisory_lock(integer, integer),
    pg_try_advisory_lock_shared(bigint),
    pg_try_advisory_lock_shared(integer, integer)
    FROM PUBLIC;
