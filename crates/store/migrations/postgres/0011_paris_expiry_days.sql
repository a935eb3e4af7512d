-- Expiry days become Paris days: an account valid until D stops at midnight
-- in Paris at the start of D+1, no longer at midnight UTC. A stored value at
-- midnight UTC is the former rule's. A Paris midnight is never a UTC
-- midnight, so running this again changes nothing.
UPDATE users
SET expires_at = ((expires_at AT TIME ZONE 'UTC')::date)::timestamp AT TIME ZONE 'Europe/Paris'
WHERE expires_at IS NOT NULL AND (expires_at AT TIME ZONE 'UTC')::time = '00:00:00';
