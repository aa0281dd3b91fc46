-- Every node follows the streams table: a row created, changed (its
-- processing options) or deleted is announced on the channel
-- 'liveproc_streams' with its ids, in the transaction that changes it
-- (delivered at commit), so that the node running its session applies
-- it at once. Ids are bounded by the API, far below NOTIFY's 8000 bytes.

CREATE FUNCTION liveproc_stream_changed() RETURNS trigger AS $$
DECLARE
    changed streams;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    PERFORM pg_notify('liveproc_streams', json_build_object(
        'op', lower(TG_OP),
        'organization_id', changed.organization_id,
        'stream_id', changed.id)::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER streams_changed AFTER INSERT OR UPDATE OR DELETE ON streams
    FOR EACH ROW EXECUTE FUNCTION liveproc_stream_changed();
