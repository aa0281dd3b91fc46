-- Recordings in object storage: each is an init segment (seq 0) and
-- fragment objects (seq 1, 2, ...), uploaded as they are written. The
-- index of what exists is kept here, never read from the store's LIST.

ALTER TABLE recordings ADD COLUMN uploaded boolean NOT NULL DEFAULT false;
CREATE INDEX recordings_to_upload ON recordings (id) WHERE NOT uploaded;

CREATE TABLE recording_parts (
    recording_id text COLLATE "C" NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    -- Where the part starts in the joined recording, and its length.
    part_offset  bigint NOT NULL,
    size_bytes   bigint NOT NULL,
    PRIMARY KEY (recording_id, seq)
);

ALTER TABLE clips ADD COLUMN uploaded boolean NOT NULL DEFAULT false;
