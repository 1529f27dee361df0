-- Audit retention: old events are purged by age, so the purge looks them up by creation time.
-- Forward-only: never edit this file once landed; add a new migration instead.

CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
