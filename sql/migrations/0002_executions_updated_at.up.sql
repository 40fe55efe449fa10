-- Executions get updated_at like every other tenant table, so a single
-- execution has an ETag and its cancel can honour If-Match.  Rows that
-- exist already take their creation time: nothing changed them since.
--
-- The lifecycle (pending -> running -> succeeded, failed or cancelled)
-- is enforced by the application, which moves a row only with an UPDATE
-- that names the status it expects to leave.
--
-- The partial index serves the claim of the oldest pending execution.

ALTER TABLE executions
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

UPDATE executions SET updated_at = created_at;

CREATE INDEX idx_executions_pending ON executions (created_at, id)
    WHERE status = 'pending';
