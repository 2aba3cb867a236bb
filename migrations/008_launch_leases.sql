-- Several nodes (DESIGN 8.5): each launch has one owner at a time, a lease with a fencing epoch.

-- The platform's node processes: one row per node name, its current process (`holder`), the URL other
-- nodes forward to, and its heartbeat. A row is kept when its node stops (stopped_at), for IT to see.
CREATE TABLE nodes (
    name          text PRIMARY KEY,
    holder        text NOT NULL,              -- this run of the node (a new one at every start)
    url           text NOT NULL,              -- where other nodes forward a launch's requests
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at    timestamptz
);

-- One row per launch that ever had an owner; never deleted, so its epoch only grows. A node owns the
-- launch while expires_at is in the future; it takes a lease that is free (expired) or its own (this node's, any run),
-- and every take increments the epoch: the fencing token each write of the launch's actor carries.
CREATE TABLE launch_leases (
    launch_id     text PRIMARY KEY REFERENCES launches (id),
    epoch         bigint NOT NULL CHECK (epoch > 0),
    node          text NOT NULL,
    holder        text NOT NULL,
    url           text NOT NULL,
    acquired_at   timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX launch_leases_holder ON launch_leases (holder, expires_at);

-- The fence: raises SQLSTATE AB002 unless `expected` is the launch's current epoch. It locks the lease row
-- (FOR SHARE) until the transaction ends, so a node taking the launch over waits for a write under way
-- and then reloads what it committed; a write after the takeover carries an old epoch and is refused.
CREATE FUNCTION astro_fence(launch text, expected bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM launch_leases WHERE launch_id = launch AND epoch = expected FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'AB002',
            MESSAGE = format('launch %s: epoch %s is not the current owner''s', launch, expected);
    END IF;
    RETURN true;
END;
$$;
