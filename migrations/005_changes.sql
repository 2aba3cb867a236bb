-- The change log: every change to OperationsDB's business tables, with its origin, written by a
-- trigger in the same transaction as the change. A transaction states its origin with
-- set_config('astro.origin', json, true); a batch of bookings maps booking ids to their own origins
-- in 'astro.origins'. Queue and technical tables (notifications, idempotency keys, counters) are left out.
CREATE TABLE changes (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    store     text NOT NULL DEFAULT 'postgres',
    entity    text NOT NULL,
    entity_id text NOT NULL,
    op        text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    fields    jsonb,
    origin    jsonb NOT NULL
);
CREATE INDEX changes_entity ON changes (entity, entity_id);
CREATE INDEX changes_at ON changes (at);

CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_row jsonb := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END;
    old_row jsonb := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END;
    row_key text := COALESCE(new_row ->> 'id', old_row ->> 'id', new_row ->> 'booking_id', old_row ->> 'booking_id');
    origins jsonb := NULLIF(current_setting('astro.origins', true), '')::jsonb;
    origin jsonb;
    changed jsonb;
BEGIN
    origin := COALESCE(
        origins -> row_key,
        origins -> (new_row ->> 'booking_id'),
        NULLIF(current_setting('astro.origin', true), '')::jsonb,
        '{"service": "database", "via": "system", "node": null, "user_id": null, "request_id": null}'::jsonb);
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(n.key, n.value) INTO changed
        FROM jsonb_each(new_row) n
        WHERE n.key NOT IN ('updated_at') AND (old_row -> n.key) IS DISTINCT FROM n.value;
        IF changed IS NULL THEN
            RETURN NULL;  -- nothing really changed: nothing to record
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        changed := new_row;
    END IF;
    INSERT INTO changes (entity, entity_id, op, fields, origin)
    VALUES (TG_TABLE_NAME, row_key, lower(TG_OP), changed, origin);
    RETURN NULL;
END;
$$;

CREATE TRIGGER agencies_changes AFTER INSERT OR UPDATE OR DELETE ON agencies FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER travelers_changes AFTER INSERT OR UPDATE OR DELETE ON travelers FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER rockets_changes AFTER INSERT OR UPDATE OR DELETE ON rockets FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER launches_changes AFTER INSERT OR UPDATE OR DELETE ON launches FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER bookings_changes AFTER INSERT OR UPDATE OR DELETE ON bookings FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER passengers_changes AFTER INSERT OR UPDATE OR DELETE ON passengers FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER traveler_payments_changes AFTER INSERT OR UPDATE OR DELETE ON traveler_payments FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER invoices_changes AFTER INSERT OR UPDATE OR DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION record_change();
CREATE TRIGGER invoice_payments_changes AFTER INSERT OR UPDATE OR DELETE ON invoice_payments FOR EACH ROW EXECUTE FUNCTION record_change();

-- Where the sync worker has got to in each change stream.
CREATE TABLE sync_cursors (
    name     text PRIMARY KEY,
    position text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_jobs (
    id          text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('launch_cache', 'user_directory', 'all')),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    total       integer NOT NULL DEFAULT 0,
    done        integer NOT NULL DEFAULT 0,
    errors      jsonb NOT NULL DEFAULT '[]',
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    node        text,
    heartbeat_at timestamptz,
    failure     text
);
CREATE INDEX sync_jobs_pending ON sync_jobs (created_at) WHERE status = 'pending';
