-- Expiry days become Paris days: an account valid until D stops at midnight
-- in Paris at the start of D+1, no longer at midnight UTC. A stored value at
-- midnight UTC is the former rule's; it moves back by Paris's offset on that
-- day (+2 h from the last Sunday of March to the last Sunday of October, +1 h
-- otherwise; at midnight the clocks have not changed yet on either Sunday).
-- A Paris midnight is never a UTC midnight, so running this again changes nothing.
UPDATE users
SET expires_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', expires_at,
    CASE
        WHEN date(expires_at) > date(strftime('%Y', expires_at) || '-03-31', '-6 days', 'weekday 0')
         AND date(expires_at) <= date(strftime('%Y', expires_at) || '-10-31', '-6 days', 'weekday 0')
        THEN '-2 hours'
        ELSE '-1 hours'
    END)
WHERE expires_at IS NOT NULL AND time(expires_at) = '00:00:00';
