-- Undoes 0003_audit_outbox.up.sql.  Entries not shipped yet are lost:
-- run the shipper until the outbox is empty before migrating down.
DROP TABLE audit_outbox;
