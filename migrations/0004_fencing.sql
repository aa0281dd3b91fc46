-- Fencing of session writes (see src/registry/cluster.rs): every
-- recording names the node and lease epoch of the session writing it,
-- and its writes are refused once another node has taken it over.

ALTER TABLE recordings ADD COLUMN writer_node  text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN writer_epoch bigint NOT NULL DEFAULT 0;

-- A lease given up by its session (as opposed to one that lapsed because
-- its node stopped renewing it): the next holder has nothing to take over.
ALTER TABLE stream_leases ADD COLUMN released boolean NOT NULL DEFAULT false;
