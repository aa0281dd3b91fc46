-- Limits the operator sets on an organization (each 0 or absent: no
-- limit): {"streams", "live_sessions", "stored_bytes",
-- "replay_memory_bytes"}.
ALTER TABLE organizations ADD COLUMN quotas jsonb NOT NULL DEFAULT '{}';
-- Counting an organization's live sessions.
CREATE INDEX stream_leases_by_organization ON stream_leases (organization_id);
