-- Owned leases: a claim of a run or a follow-up action records the server instance that holds
-- it (its instance id, kept in its data directory), so that an instance restarted after a crash
-- releases the claims of its previous life at once instead of waiting for their leases to end.
-- Claims of other instances still end only when their leases do. docs/autoposting.md,
-- "Restarts and leases".
-- Forward-only: never edit this file once landed; add a new migration instead.

ALTER TABLE post_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE post_actions ADD COLUMN lease_owner TEXT;
