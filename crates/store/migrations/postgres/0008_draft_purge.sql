-- A draft holds the uploaded file and the admin's edits (imposed passwords in
-- clear): its content is wiped once its import committed, or once abandoned.
ALTER TABLE drafts ADD COLUMN purged_at BIGINT;
-- The housekeeping's purge looks drafts up by age and their jobs by draft.
CREATE INDEX drafts_by_update ON drafts (updated_at);
CREATE INDEX jobs_by_draft ON jobs (draft_id);
