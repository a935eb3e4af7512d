-- A pupil's level (the MEF label the feed's Eleve file gives, such as 4EME),
-- shown on the account page beside the class.
ALTER TABLE users ADD COLUMN level TEXT;
