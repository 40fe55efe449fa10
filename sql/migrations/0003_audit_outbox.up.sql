-- The audit outbox: one row per change (and per read, when the tenant
-- asks for reads to be audited), written in the same transaction as the
-- change it records, so an entry exists exactly when its change does.
-- The shipper (fcgi/shipper.c) moves the rows to the tenant's audit
-- collection in MongoDB and deletes them; docs/audit.md tells the story.
--
-- id is time-ordered, made by crewd (lib/audit.c): a MongoDB ObjectId
-- of 48 bits of Unix time in milliseconds, 12 bits of the fraction of
-- that millisecond and 36 random bits, written as a UUID.  ORDER BY id is
-- the order the entries were written in (for one resource, whose writers
-- queue on its row lock, the order of its changes).  A UUID and no
-- sequence: every key of a tenant schema is a UUID, and a schema may live
-- on a distributed engine where sequences are not to be relied on.  The
-- same id is the MongoDB document's _id, so shipping a row twice writes
-- it once.
--
-- changes is {"before": ..., "after": ...}, each the resource as the API
-- shows it (or null), with secrets already replaced by "***".  json, not
-- jsonb: nothing queries inside it, and it keeps the members in the
-- order the API writes them.

CREATE TABLE audit_outbox (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    action varchar(10) NOT NULL
        CHECK (action IN ('create', 'read', 'update', 'delete')),
    resource_type varchar(50) NOT NULL,
    resource_id uuid,
    changes json NOT NULL,
    ip_address varchar(64),
    user_agent varchar(512),
    created_at timestamptz NOT NULL DEFAULT now()
);
