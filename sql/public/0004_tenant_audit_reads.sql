-- A tenant's own setting for its audit trail (docs/audit.md).
--
-- audit_reads: whether reads (GET) are audited too, not only creates,
-- updates and deletes.  Off by default: a read entry per request is a
-- write per request.  An admin changes it with PATCH /api/v1/tenant.

ALTER TABLE public.tenants ADD COLUMN audit_reads boolean NOT NULL
    DEFAULT false;
