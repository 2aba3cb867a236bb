-- Issue 14, finding 5: who set a traveler's VIP flag. 'auto': the rule (bookings on two active confirmed
-- launches) set it and re-evaluates it when a booking is cancelled or refunded; an IT user's id: set by
-- hand, never changed by the rule; NULL: never set, or set before this migration (treated as 'auto').
ALTER TABLE travelers ADD COLUMN vip_set_by text;
