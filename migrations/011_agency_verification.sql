-- Issue 14, finding 4: a self-registered agency's launches are public, bookable and announced only once IT
-- has verified it. NULL: the agency waits for IT. Agencies that existed before this migration were already
-- public and booked: they count as verified since they registered.
ALTER TABLE agencies ADD COLUMN verified_at timestamptz;
ALTER TABLE agencies ADD COLUMN verified_by text;
UPDATE agencies SET verified_at = created_at, verified_by = 'migration';

-- The per-day launch limit counts an agency's launches created in the last 24 hours.
CREATE INDEX launches_agency_created ON launches (agency_id, created_at);

