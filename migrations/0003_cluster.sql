-- Nodes sharing this database, and which node owns each live session.
-- Times are the database's own clock (now()), so nodes whose clocks
-- disagree still agree on when a heartbeat or a lease is old.

CREATE TABLE nodes (
    id            text COLLATE "C" PRIMARY KEY,
    advertise_url text NOT NULL,
    -- 0: no limit.
    max_streams   integer NOT NULL,
    live_streams  integer NOT NULL,
    cpu_percent   real NOT NULL,
    draining      boolean NOT NULL,
    version       text NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL
);

-- One row per stream that has had a live session. The node holds the
-- session while expires_at is ahead; epoch goes up with every new holder
-- (the fencing token of every write that belongs to the session).
CREATE TABLE stream_leases (
    organization_id text COLLATE "C" NOT NULL,
    stream_id       text COLLATE "C" NOT NULL,
    node_id         text COLLATE "C" NOT NULL,
    epoch           bigint NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, stream_id)
);
CREATE INDEX stream_leases_by_node ON stream_leases (node_id);
