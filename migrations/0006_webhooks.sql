-- Webhook endpoints of the organizations, the outbox of events waiting
-- to be delivered to them (one row per event and endpoint, written in the
-- transaction of the change the event reports), and the log of delivery
-- attempts. Times are milliseconds since the Unix epoch.

CREATE TABLE webhook_endpoints (
    id                       text COLLATE "C" PRIMARY KEY,
    organization_id          text COLLATE "C" NOT NULL,
    url                      text NOT NULL,
    event_types              text[] NOT NULL,
    secret                   text NOT NULL,
    previous_secret          text,
    previous_secret_until_ms bigint NOT NULL DEFAULT 0,
    enabled                  boolean NOT NULL,
    disabled_reason          text NOT NULL DEFAULT '',
    failing_since_ms         bigint NOT NULL DEFAULT 0,
    create_time_ms           bigint NOT NULL
);
CREATE INDEX webhook_endpoints_by_organization ON webhook_endpoints (organization_id, id);

CREATE TABLE webhook_messages (
    seq             bigserial PRIMARY KEY,
    endpoint_id     text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    organization_id text COLLATE "C" NOT NULL,
    event_type      text NOT NULL,
    event_time_ms   bigint NOT NULL,
    data            text NOT NULL,
    media_path      text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_ms bigint NOT NULL,
    -- A node delivering it holds it until then (a node that dies lets go).
    claimed_until_ms bigint NOT NULL DEFAULT 0
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_ms);
CREATE INDEX webhook_messages_by_endpoint ON webhook_messages (endpoint_id);

CREATE TABLE webhook_attempts (
    seq             bigserial PRIMARY KEY,
    endpoint_id     text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    attempt         integer NOT NULL,
    time_ms         bigint NOT NULL,
    status          integer NOT NULL,
    error           text NOT NULL,
    duration_ms     bigint NOT NULL,
    outcome         text NOT NULL,
    next_attempt_ms bigint NOT NULL
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, seq);
CREATE INDEX webhook_attempts_by_time ON webhook_attempts (time_ms);
