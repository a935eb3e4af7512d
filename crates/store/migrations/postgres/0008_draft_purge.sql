-- A draft holds the uploaded file and the admin's edits (imposed passwords in
-- clear): its content is wiped once its import committed, or once abandoned.
ALTER TABLE drafts ADD COLUMN purged_at BIGINT;
