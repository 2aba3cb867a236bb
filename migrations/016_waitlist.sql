-- Issue 16: the waiting list. One row per traveler's place on a launch's list; the launch's owner (its
-- actor, under the fence) makes every move, each a conditional UPDATE on the row's status:
--   waiting -> offered (seats came free; until offer_expires_at) -> booked | expired | left | closed
--   waiting -> left | closed
-- Offered seats count against the launch beside sold and held ones: sold + offered + free = capacity.
CREATE TABLE waitlist_entries (
    id               text PRIMARY KEY,
    launch_id        text NOT NULL REFERENCES launches (id),
    traveler_id      text NOT NULL REFERENCES travelers (id),
    seats            integer NOT NULL CHECK (seats BETWEEN 1 AND 6),
    status           text NOT NULL DEFAULT 'waiting'
                     CHECK (status IN ('waiting', 'offered', 'booked', 'expired', 'left', 'closed')),
    joined_at        timestamptz NOT NULL,
    offered_at       timestamptz,
    offer_expires_at timestamptz,
    booking_id       text REFERENCES bookings (id),
    ended_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT waitlist_offer CHECK (status <> 'offered' OR offer_expires_at IS NOT NULL)
);
-- One place per traveler and launch while on the list (a traveler who left may join again).
CREATE UNIQUE INDEX waitlist_one_place ON waitlist_entries (launch_id, traveler_id)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_queue ON waitlist_entries (launch_id, joined_at, id) WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_traveler ON waitlist_entries (traveler_id, joined_at DESC);
CREATE INDEX waitlist_offers_due ON waitlist_entries (offer_expires_at) WHERE status = 'offered';
CREATE TRIGGER waitlist_entries_changes AFTER INSERT OR UPDATE OR DELETE ON waitlist_entries
    FOR EACH ROW EXECUTE FUNCTION record_change();

INSERT INTO notification_templates (event, subject, body) VALUES
('waitlist_offer', '{seats_are_text} yours until {offer_until}: {mission}',
 E'Hello {name},\n\nSeats came free on {mission} to {destination} on {date}, and you are next on its waiting list: {seats_are_text} held for you until {offer_until} ({offer_until_date}), at {price} each.\nBook them before then: {link}\nAfter that they pass to the next traveler waiting.\n\nAstroBookings'),
('waitlist_closed', 'The waiting list of {mission} is closed',
 E'Hello {name},\n\n{mission} to {destination} ({date}) is {status_text}, so its waiting list is closed and you are no longer on it. Nothing was charged.\n\nAstroBookings');
