-- The notification outbox: one row per recipient, written in the transaction of the change behind it.
ALTER TABLE travelers ADD COLUMN vip boolean NOT NULL DEFAULT false;
CREATE INDEX travelers_vip ON travelers (id) WHERE vip;

CREATE TABLE notification_templates (
    event      text PRIMARY KEY,
    subject    text NOT NULL,
    body       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

CREATE TABLE notifications (
    id              text PRIMARY KEY,
    event           text NOT NULL,
    recipient_id    text NOT NULL,
    recipient_role  text NOT NULL CHECK (recipient_role IN ('traveler', 'agency')),
    recipient_email text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'held', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    claimed_by      text,
    claimed_at      timestamptz,
    subject         text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_recipient ON notifications (recipient_id, id);
CREATE INDEX notifications_status ON notifications (status, id);

INSERT INTO notification_templates (event, subject, body) VALUES
('launch_scheduled', 'New launch: {mission} to {destination}',
 E'Hello {name},\n\n{mission} to {destination} is scheduled for {date}, {seats_available} seats at {price} each.\nAs a VIP traveler you can book it before everyone else: {link}\n\nAstroBookings'),
('launch_confirmed', 'Confirmed: {mission} on {date}',
 E'Hello {name},\n\n{mission} to {destination} on {date} is confirmed: it will fly.\n{link}\n\nAstroBookings'),
('launch_delayed', 'Delayed: {mission} now on {date}',
 E'Hello {name},\n\n{mission} to {destination} has been delayed to {date}.{reason_line}\nCancelling a booking made before this delay refunds it in full.\n{link}\n\nAstroBookings'),
('launch_aborted', 'Aborted: {mission}',
 E'Hello {name},\n\n{mission} to {destination} on {date} has been aborted.{reason_line}\nEvery booking is refunded in full: {refund} to you.\n\nAstroBookings'),
('launch_successful', 'Flown: {mission}',
 E'Hello {name},\n\n{mission} to {destination} flew successfully on {date}. Thank you for flying with us.\n\nAstroBookings'),
('launch_failed', 'Failed: {mission}',
 E'Hello {name},\n\n{mission} to {destination} on {date} failed.{reason_line}\nEvery booking is refunded in full: {refund} to you.\n\nAstroBookings'),
('booking_confirmed', 'Booking confirmed: {seats} seat(s) on {mission}',
 E'Hello {name},\n\nBooking {booking_id}: {seats} seat(s) on {mission} to {destination} on {date}, {amount} charged.\n{link}\n\nAstroBookings'),
('booking_cancelled', 'Booking cancelled: {mission}',
 E'Hello {name},\n\nBooking {booking_id} ({seats} seat(s) on {mission}, {date}) is cancelled. Refund: {refund} ({refund_pct} %).\n\nAstroBookings'),
('invoice_issued', 'Invoice {invoice_number}: {amount}',
 E'Hello {name},\n\nInvoice {invoice_number} for {mission} ({kind}) is issued: {amount}, due {due_date}.\n\nAstroBookings'),
('payment_received', 'Payment received for {invoice_number}',
 E'Hello {name},\n\nWe received {amount} for invoice {invoice_number}. Open balance: {balance}.\n\nAstroBookings');
