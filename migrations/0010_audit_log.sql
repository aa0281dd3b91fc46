-- Changes operators and organizations made (never a secret), newest
-- first by id (which sorts by time).
CREATE TABLE audit_events (
    id              text COLLATE "C" PRIMARY KEY,
    time_ms         bigint NOT NULL,
    actor           text NOT NULL,
    organization_id text COLLATE "C" NOT NULL,
    action          text NOT NULL,
    resource        text NOT NULL,
    details         text NOT NULL,
    peer            text NOT NULL
);
CREATE INDEX audit_events_of_organization ON audit_events (organization_id, id);
