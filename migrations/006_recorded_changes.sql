-- Group commit writes the change rows of what it inserts itself: one statement per table, each row
-- with its own booking's origin. Until now every row's trigger parsed a map of the origins of every
-- booking in the batch ('astro.origins'), so a batch cost grew with the square of its size (a batch of
-- 77 bookings: 0.5 ms per inserted row). A transaction names the tables whose INSERTs it records
-- itself in 'astro.recorded' (comma-separated); the trigger skips those. 'astro.origins' is gone.
CREATE OR REPLACE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_row jsonb;
    old_row jsonb;
    row_key text;
    origin jsonb;
    changed jsonb;
BEGIN
    IF TG_OP = 'INSERT'
       AND TG_TABLE_NAME = ANY (string_to_array(NULLIF(current_setting('astro.recorded', true), ''), ','))
    THEN
        RETURN NULL;  -- recorded by the statement that inserted it
    END IF;
    new_row := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END;
    old_row := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END;
    row_key := COALESCE(new_row ->> 'id', old_row ->> 'id', new_row ->> 'booking_id', old_row ->> 'booking_id');
    origin := COALESCE(
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
