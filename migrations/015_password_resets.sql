-- Issue 15: password reset links. Only the SHA-256 of a link's token is kept; a link is spent by one
-- conditional UPDATE (used_at IS NULL AND not expired), so it works once.
CREATE TABLE password_resets (
    id          text PRIMARY KEY,
    user_id     text NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_open ON password_resets (user_id) WHERE used_at IS NULL;

-- A reset e-mail goes to employees too (they have no row of their own in PostgreSQL).
ALTER TABLE notifications DROP CONSTRAINT notifications_recipient_role_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_recipient_role_check
    CHECK (recipient_role IN ('traveler', 'agency', 'finance', 'it'));

INSERT INTO notification_templates (event, subject, body) VALUES
('password_reset', 'Reset your AstroBookings password',
 E'Hello {name},\n\nSomeone, we hope you, asked to reset the password of your AstroBookings account.\nChoose a new password with this link within 30 minutes; it works once:\n{link}\n\nIf it was not you, ignore this e-mail: your password stays as it is.\n\nAstroBookings');
