-- Every instant is stored one way (issue 12): the web, job, result and mail
-- tables held unix seconds (BIGINT) while the directory held timestamps. They
-- become timestamps too, so that every query binds and reads `DateTime<Utc>`.
-- The jobs' result file moved to import_results in 0004: its two columns go.

ALTER TABLE admins ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);
ALTER TABLE sessions ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);
ALTER TABLE sessions ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);
ALTER TABLE api_tokens ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);
ALTER TABLE failed_logins ALTER COLUMN at TYPE TIMESTAMPTZ USING to_timestamp(at);
ALTER TABLE drafts ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);
ALTER TABLE drafts ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING to_timestamp(updated_at);
ALTER TABLE drafts ALTER COLUMN purged_at TYPE TIMESTAMPTZ USING to_timestamp(purged_at);
ALTER TABLE jobs ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);
ALTER TABLE jobs ALTER COLUMN started_at TYPE TIMESTAMPTZ USING to_timestamp(started_at);
ALTER TABLE jobs ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING to_timestamp(finished_at);
ALTER TABLE jobs ALTER COLUMN lease_until TYPE TIMESTAMPTZ USING to_timestamp(lease_until);
ALTER TABLE import_results ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING to_timestamp(expires_at);
ALTER TABLE mails ALTER COLUMN next_attempt_at TYPE TIMESTAMPTZ USING to_timestamp(next_attempt_at);
ALTER TABLE mails ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at);
ALTER TABLE mails ALTER COLUMN sent_at TYPE TIMESTAMPTZ USING to_timestamp(sent_at);
ALTER TABLE jobs DROP COLUMN result_file;
ALTER TABLE jobs DROP COLUMN result_expires_at;
