-- Issue 15, finding 7: subjects and bodies written as a person would. "2 seats" / "1 seat" instead of
-- "seat(s)" ({seats_text}), destinations named for people (the data now holds "the Moon", "Low Earth orbit"),
-- the traveler's booking e-mail links to the e-ticket ({ticket_line}), an invoice's to the invoice
-- ({invoice_line}). A template IT has edited is left as IT wrote it: only the shipped text is replaced.
UPDATE notification_templates SET
    body = E'Hello {name},\n\n{mission} to {destination} is scheduled for {date}, {seats_available_text} at {price} each.\nAs a VIP traveler you can book it before everyone else: {link}\n\nAstroBookings',
    updated_at = now()
WHERE event = 'launch_scheduled'
  AND body = E'Hello {name},\n\n{mission} to {destination} is scheduled for {date}, {seats_available} seats at {price} each.\nAs a VIP traveler you can book it before everyone else: {link}\n\nAstroBookings';

UPDATE notification_templates SET subject = 'Booking confirmed: {seats_text} on {mission}',
    updated_at = now()
WHERE event = 'booking_confirmed' AND subject = 'Booking confirmed: {seats} seat(s) on {mission}';

UPDATE notification_templates SET
    body = E'Hello {name},\n\nBooking {booking_id}: {seats_text} on {mission} to {destination} on {date}, {amount} charged.\nThe launch: {link}{ticket_line}\n\nAstroBookings',
    updated_at = now()
WHERE event = 'booking_confirmed'
  AND body = E'Hello {name},\n\nBooking {booking_id}: {seats} seat(s) on {mission} to {destination} on {date}, {amount} charged.\n{link}\n\nAstroBookings';

UPDATE notification_templates SET
    body = E'Hello {name},\n\nBooking {booking_id} ({seats_text} on {mission}, {date}) is cancelled. Refund: {refund} ({refund_pct} %).\n\nAstroBookings',
    updated_at = now()
WHERE event = 'booking_cancelled'
  AND body = E'Hello {name},\n\nBooking {booking_id} ({seats} seat(s) on {mission}, {date}) is cancelled. Refund: {refund} ({refund_pct} %).\n\nAstroBookings';

UPDATE notification_templates SET
    body = E'Hello {name},\n\nInvoice {invoice_number} for {mission} ({kind}) is issued: {amount}, due {due_date}.{invoice_line}\n\nAstroBookings',
    updated_at = now()
WHERE event = 'invoice_issued'
  AND body = E'Hello {name},\n\nInvoice {invoice_number} for {mission} ({kind}) is issued: {amount}, due {due_date}.\n\nAstroBookings';
