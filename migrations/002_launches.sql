-- Rockets, launches, bookings with their passengers, traveler charges and refunds, idempotency records.
CREATE TABLE rockets (
    id          text PRIMARY KEY,
    agency_id   text NOT NULL REFERENCES agencies (id),
    name        text NOT NULL,
    capacity    integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    range       text NOT NULL CHECK (range IN ('low_earth', 'moon', 'mars')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX rockets_agency ON rockets (agency_id, id) WHERE deleted_at IS NULL;

CREATE TABLE launches (
    id              text PRIMARY KEY,
    agency_id       text NOT NULL REFERENCES agencies (id),
    rocket_id       text NOT NULL REFERENCES rockets (id),
    slug            text NOT NULL UNIQUE,
    mission         text NOT NULL,
    destination     text NOT NULL CHECK (destination IN ('low_earth', 'moon', 'mars')),
    scheduled_at    timestamptz NOT NULL,
    price_cents     bigint NOT NULL CHECK (price_cents > 0),
    capacity        integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    min_passengers  integer NOT NULL,
    seats_booked    integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'scheduled'
                    CHECK (status IN ('scheduled', 'confirmed', 'delayed', 'aborted', 'successful', 'failed')),
    status_reason   text,
    public_from     timestamptz NOT NULL,
    last_delayed_at timestamptz,
    confirmed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT launches_seats CHECK (seats_booked >= 0 AND seats_booked <= capacity),
    CONSTRAINT launches_min CHECK (min_passengers BETWEEN 1 AND capacity)
);
CREATE INDEX launches_agency ON launches (agency_id, scheduled_at);
CREATE INDEX launches_open ON launches (scheduled_at) WHERE status IN ('scheduled', 'confirmed', 'delayed');

CREATE TABLE bookings (
    id             text PRIMARY KEY,
    launch_id      text NOT NULL REFERENCES launches (id),
    traveler_id    text NOT NULL REFERENCES travelers (id),
    seats          integer NOT NULL CHECK (seats BETWEEN 1 AND 6),
    price_cents    bigint NOT NULL CHECK (price_cents > 0),
    total_cents    bigint NOT NULL CHECK (total_cents > 0),
    status         text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'cancelled')),
    cancel_reason  text CHECK (cancel_reason IN ('traveler', 'launch_aborted', 'launch_failed')),
    refund_pct     integer CHECK (refund_pct BETWEEN 0 AND 100),
    refund_cents   bigint CHECK (refund_cents >= 0),
    seats_released boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    cancelled_at   timestamptz
);
CREATE INDEX bookings_launch ON bookings (launch_id) WHERE status = 'confirmed';
CREATE INDEX bookings_traveler ON bookings (traveler_id, id);

CREATE TABLE passengers (
    booking_id  text NOT NULL REFERENCES bookings (id),
    position    integer NOT NULL,
    name        text NOT NULL,
    birth_date  date NOT NULL,
    PRIMARY KEY (booking_id, position)
);

-- Money that moved through the payment gateway for travelers: the charge of a booking and its refund.
CREATE TABLE traveler_payments (
    id           text PRIMARY KEY,
    booking_id   text NOT NULL REFERENCES bookings (id),
    kind         text NOT NULL CHECK (kind IN ('charge', 'refund')),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    status       text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    gateway_ref  text,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX traveler_payments_one_each ON traveler_payments (booking_id, kind);
CREATE INDEX traveler_payments_pending ON traveler_payments (created_at) WHERE status = 'pending';

CREATE TABLE idempotency_keys (
    user_id       text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status        text NOT NULL CHECK (status IN ('in_progress', 'done')),
    response_code integer,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_age ON idempotency_keys (created_at);
