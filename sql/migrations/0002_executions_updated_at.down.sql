-- Undoes 0002_executions_updated_at.up.sql.
DROP INDEX idx_executions_pending;

ALTER TABLE executions DROP COLUMN updated_at;
