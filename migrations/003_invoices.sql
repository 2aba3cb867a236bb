-- Invoices to agencies (one per launch and kind, numbers gapless per year) and their payments.
CREATE TABLE invoice_counters (
    year integer PRIMARY KEY,
    last integer NOT NULL
);

CREATE TABLE invoices (
    id                text PRIMARY KEY,
    number            text NOT NULL UNIQUE,
    year              integer NOT NULL,
    seq               integer NOT NULL,
    agency_id         text NOT NULL REFERENCES agencies (id),
    launch_id         text NOT NULL REFERENCES launches (id),
    kind              text NOT NULL CHECK (kind IN ('commission', 'abort_fee')),
    net_revenue_cents bigint NOT NULL DEFAULT 0,
    rate_bp           integer NOT NULL DEFAULT 0,
    amount_cents      bigint NOT NULL CHECK (amount_cents >= 0),
    paid_cents        bigint NOT NULL DEFAULT 0,
    pending_cents     bigint NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'partially_paid', 'paid')),
    issued_at         timestamptz NOT NULL,
    due_at            timestamptz NOT NULL,
    CONSTRAINT invoices_one_per_launch_kind UNIQUE (launch_id, kind),
    CONSTRAINT invoices_year_seq UNIQUE (year, seq),
    CONSTRAINT invoices_not_overpaid CHECK (paid_cents >= 0 AND pending_cents >= 0
                                            AND paid_cents + pending_cents <= amount_cents)
);
CREATE INDEX invoices_agency ON invoices (agency_id, issued_at);

CREATE TABLE invoice_payments (
    id           text PRIMARY KEY,
    invoice_id   text NOT NULL REFERENCES invoices (id),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    method       text NOT NULL CHECK (method IN ('card', 'transfer')),
    status       text NOT NULL CHECK (status IN ('pending', 'done', 'declined')),
    reference    text,
    gateway_ref  text,
    recorded_by  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    paid_at      timestamptz
);
CREATE INDEX invoice_payments_invoice ON invoice_payments (invoice_id);
CREATE INDEX invoice_payments_paid ON invoice_payments (paid_at) WHERE status = 'done';
