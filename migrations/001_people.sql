-- Travelers and agencies: the profile rows behind the users kept in SystemDB.
CREATE TABLE travelers (
    id            text PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text NOT NULL,
    phone         text NOT NULL,
    contact_email text,
    tax_id        text NOT NULL,
    address       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agencies (
    id            text PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text NOT NULL,
    legal_name    text NOT NULL,
    tax_id        text NOT NULL,
    legal_address text NOT NULL,
    description   text,
    contact_email text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agencies_tax_id_key UNIQUE (tax_id)
);
