-- The registry (see src/registry/mod.rs). Ids compare in byte order
-- (COLLATE "C"), as the embedded backend's keys do, so that listings
-- page the same way on both.

CREATE TABLE settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE organizations (
    id              text COLLATE "C" PRIMARY KEY,
    name            text NOT NULL,
    live_processing boolean NOT NULL,
    -- SHA-256 (hex) of the current API key.
    api_key_hash    text NOT NULL UNIQUE,
    create_time_ms  bigint NOT NULL
);

CREATE TABLE streams (
    organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id),
    id              text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    -- The processing options, as the API's settings (JSON).
    processing      jsonb NOT NULL,
    stream_key      text NOT NULL UNIQUE,
    source_uri      text,
    create_time_ms  bigint NOT NULL,
    PRIMARY KEY (organization_id, id)
);

CREATE TABLE recordings (
    id              text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    stream_id       text COLLATE "C" NOT NULL,
    -- The publishing session ('' for files from before sessions had ids).
    session_id      text COLLATE "C" NOT NULL,
    file_name       text NOT NULL,
    state           text NOT NULL,
    start_time_ms   bigint NOT NULL,
    end_time_ms     bigint NOT NULL,
    start_pts_ns    bigint NOT NULL,
    duration_ns     bigint NOT NULL,
    size_bytes      bigint NOT NULL
);
CREATE INDEX recordings_of_stream ON recordings (organization_id, stream_id, id);
CREATE INDEX recordings_of_session ON recordings (organization_id, stream_id, session_id, id);
CREATE INDEX recordings_unfinished ON recordings (id) WHERE state = 'recording';

CREATE TABLE clips (
    id              text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    stream_id       text COLLATE "C" NOT NULL,
    file_name       text NOT NULL,
    title           text NOT NULL,
    start_time_ms   bigint NOT NULL,
    start_pts_ns    bigint NOT NULL,
    duration_ns     bigint NOT NULL,
    size_bytes      bigint NOT NULL,
    create_time_ms  bigint NOT NULL
);
CREATE INDEX clips_of_stream ON clips (organization_id, stream_id, id);
