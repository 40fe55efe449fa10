-- MongoDB per tenant (lib/provision.h, docs/mongodb.md).
--
-- mongo_provisioned_at: when the tenant's three collections were last
-- made with their validators and indexes; NULL while they are not.  A
-- tenant is committed first and its collections are made after, so
-- sign-up never depends on MongoDB: a tenant whose collections could not
-- be made (MongoDB down) stays NULL and is retried, and the tenants that
-- existed before this migration start NULL too.
--
-- execution_log_ttl_days, chat_message_ttl_days: how long MongoDB keeps
-- the tenant's execution logs and chat messages (TTL indexes on
-- "timestamp").  Changing one clears mongo_provisioned_at, so the new
-- value reaches the index the same way.

ALTER TABLE public.tenants ADD COLUMN mongo_provisioned_at timestamptz;

ALTER TABLE public.tenants ADD COLUMN execution_log_ttl_days integer
    NOT NULL DEFAULT 30
    CHECK (execution_log_ttl_days BETWEEN 1 AND 3650);

ALTER TABLE public.tenants ADD COLUMN chat_message_ttl_days integer
    NOT NULL DEFAULT 30
    CHECK (chat_message_ttl_days BETWEEN 1 AND 3650);

CREATE INDEX idx_tenants_mongo_pending ON public.tenants (created_at)
    WHERE mongo_provisioned_at IS NULL;
