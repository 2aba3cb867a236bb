-- Payment attempts (DESIGN 8.3): written before any money moves, moved only by conditional updates
-- (`... WHERE state = <expected>`), finished by the recovery worker after a crash. The group commit
-- moves an attempt authorized -> booked in the transaction that inserts its booking.
CREATE TABLE payment_attempts (
    id            text PRIMARY KEY,           -- the gateway's idempotency key
    booking_id    text NOT NULL UNIQUE,       -- chosen before authorizing; the booking gets this id
    traveler_id   text NOT NULL REFERENCES travelers (id),
    launch_id     text NOT NULL REFERENCES launches (id),
    seats         integer NOT NULL CHECK (seats BETWEEN 1 AND 6),
    amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
    state         text NOT NULL DEFAULT 'created' CHECK (state IN
                      ('created', 'authorized', 'booked', 'captured', 'voiding', 'voided', 'declined', 'failed')),
    gateway_ref   text,
    error         text,
    deadline      timestamptz NOT NULL,       -- past it, the recovery worker finishes the attempt
    claimed_by    text,                       -- the node recovering it now, until claimed_at + a lease
    claimed_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_attempts_open ON payment_attempts (deadline)
    WHERE state IN ('created', 'authorized', 'booked', 'voiding');
CREATE INDEX payment_attempts_created ON payment_attempts (created_at);

-- An idempotency key belongs to the attempt its request started: a retry after a crash learns the
-- attempt's real outcome instead of waiting for a record nobody will finish.
ALTER TABLE idempotency_keys ADD COLUMN attempt_id text REFERENCES payment_attempts (id);
ALTER TABLE idempotency_keys ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- The sandbox gateway's own ledger (DESIGN 8.6: durable, so recovery can ask it what it holds).
CREATE TABLE sandbox_payments (
    ref            text PRIMARY KEY,
    key            text NOT NULL UNIQUE,      -- the idempotency key it was authorized under
    amount_cents   bigint NOT NULL,
    state          text NOT NULL CHECK (state IN ('authorized', 'captured', 'voided', 'declined')),
    refunded_cents bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    booking_id     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_cents <= amount_cents)
);
CREATE TABLE sandbox_refunds (
    ref          text PRIMARY KEY,
    key          text NOT NULL UNIQUE,
    payment_ref  text NOT NULL REFERENCES sandbox_payments (ref),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Stripe webhook events, each acted on once.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    object_id   text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- A statement that must not go on unless a condition holds: raises SQLSTATE AB001 with `what`.
-- Group commit uses it to stop when an attempt of its batch is no longer authorized (recovery released
-- it first): nothing of the batch is written, and the actor commits the others without it.
CREATE FUNCTION astro_require(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'AB001', MESSAGE = what;
    END IF;
    RETURN true;
END;
$$;
