-- Every instant is stored one way (issue 12): the web, job, result and mail
-- tables held unix seconds (BIGINT) while the directory held timestamps. They
-- become timestamps too, so that every query binds and reads `DateTime<Utc>`.
-- The jobs' result file moved to import_results in 0004: its two columns go.
-- SQLite cannot change a column's type: each column is rebuilt beside the
-- former one (text as the directory's instants: RFC 3339 in UTC, as sqlx
-- writes them), then takes its name. The empty default of a NOT NULL column
-- is never used: every insert gives the instant.

DROP INDEX failed_logins_by_login;
DROP INDEX drafts_by_update;
DROP INDEX drafts_by_admin;
DROP INDEX mails_due;
ALTER TABLE admins ADD COLUMN created_at_instant TEXT NOT NULL DEFAULT '';
UPDATE admins SET created_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch') WHERE created_at IS NOT NULL;
ALTER TABLE admins DROP COLUMN created_at;
ALTER TABLE admins RENAME COLUMN created_at_instant TO created_at;
ALTER TABLE sessions ADD COLUMN created_at_instant TEXT NOT NULL DEFAULT '';
UPDATE sessions SET created_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch') WHERE created_at IS NOT NULL;
ALTER TABLE sessions DROP COLUMN created_at;
ALTER TABLE sessions RENAME COLUMN created_at_instant TO created_at;
ALTER TABLE sessions ADD COLUMN expires_at_instant TEXT NOT NULL DEFAULT '';
UPDATE sessions SET expires_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', expires_at, 'unixepoch') WHERE expires_at IS NOT NULL;
ALTER TABLE sessions DROP COLUMN expires_at;
ALTER TABLE sessions RENAME COLUMN expires_at_instant TO expires_at;
ALTER TABLE api_tokens ADD COLUMN created_at_instant TEXT NOT NULL DEFAULT '';
UPDATE api_tokens SET created_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch') WHERE created_at IS NOT NULL;
ALTER TABLE api_tokens DROP COLUMN created_at;
ALTER TABLE api_tokens RENAME COLUMN created_at_instant TO created_at;
ALTER TABLE failed_logins ADD COLUMN at_instant TEXT NOT NULL DEFAULT '';
UPDATE failed_logins SET at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', at, 'unixepoch') WHERE at IS NOT NULL;
ALTER TABLE failed_logins DROP COLUMN at;
ALTER TABLE failed_logins RENAME COLUMN at_instant TO at;
ALTER TABLE drafts ADD COLUMN created_at_instant TEXT NOT NULL DEFAULT '';
UPDATE drafts SET created_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch') WHERE created_at IS NOT NULL;
ALTER TABLE drafts DROP COLUMN created_at;
ALTER TABLE drafts RENAME COLUMN created_at_instant TO created_at;
ALTER TABLE drafts ADD COLUMN updated_at_instant TEXT NOT NULL DEFAULT '';
UPDATE drafts SET updated_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', updated_at, 'unixepoch') WHERE updated_at IS NOT NULL;
ALTER TABLE drafts DROP COLUMN updated_at;
ALTER TABLE drafts RENAME COLUMN updated_at_instant TO updated_at;
ALTER TABLE drafts ADD COLUMN purged_at_instant TEXT;
UPDATE drafts SET purged_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', purged_at, 'unixepoch') WHERE purged_at IS NOT NULL;
ALTER TABLE drafts DROP COLUMN purged_at;
ALTER TABLE drafts RENAME COLUMN purged_at_instant TO purged_at;
ALTER TABLE jobs ADD COLUMN created_at_instant TEXT NOT NULL DEFAULT '';
UPDATE jobs SET created_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch') WHERE created_at IS NOT NULL;
ALTER TABLE jobs DROP COLUMN created_at;
ALTER TABLE jobs RENAME COLUMN created_at_instant TO created_at;
ALTER TABLE jobs ADD COLUMN started_at_instant TEXT;
UPDATE jobs SET started_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', started_at, 'unixepoch') WHERE started_at IS NOT NULL;
ALTER TABLE jobs DROP COLUMN started_at;
ALTER TABLE jobs RENAME COLUMN started_at_instant TO started_at;
ALTER TABLE jobs ADD COLUMN finished_at_instant TEXT;
UPDATE jobs SET finished_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', finished_at, 'unixepoch') WHERE finished_at IS NOT NULL;
ALTER TABLE jobs DROP COLUMN finished_at;
ALTER TABLE jobs RENAME COLUMN finished_at_instant TO finished_at;
ALTER TABLE jobs ADD COLUMN lease_until_instant TEXT;
UPDATE jobs SET lease_until_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', lease_until, 'unixepoch') WHERE lease_until IS NOT NULL;
ALTER TABLE jobs DROP COLUMN lease_until;
ALTER TABLE jobs RENAME COLUMN lease_until_instant TO lease_until;
ALTER TABLE import_results ADD COLUMN expires_at_instant TEXT NOT NULL DEFAULT '';
UPDATE import_results SET expires_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', expires_at, 'unixepoch') WHERE expires_at IS NOT NULL;
ALTER TABLE import_results DROP COLUMN expires_at;
ALTER TABLE import_results RENAME COLUMN expires_at_instant TO expires_at;
ALTER TABLE mails ADD COLUMN next_attempt_at_instant TEXT NOT NULL DEFAULT '';
UPDATE mails SET next_attempt_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', next_attempt_at, 'unixepoch') WHERE next_attempt_at IS NOT NULL;
ALTER TABLE mails DROP COLUMN next_attempt_at;
ALTER TABLE mails RENAME COLUMN next_attempt_at_instant TO next_attempt_at;
ALTER TABLE mails ADD COLUMN created_at_instant TEXT NOT NULL DEFAULT '';
UPDATE mails SET created_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, 'unixepoch') WHERE created_at IS NOT NULL;
ALTER TABLE mails DROP COLUMN created_at;
ALTER TABLE mails RENAME COLUMN created_at_instant TO created_at;
ALTER TABLE mails ADD COLUMN sent_at_instant TEXT;
UPDATE mails SET sent_at_instant = strftime('%Y-%m-%dT%H:%M:%S+00:00', sent_at, 'unixepoch') WHERE sent_at IS NOT NULL;
ALTER TABLE mails DROP COLUMN sent_at;
ALTER TABLE mails RENAME COLUMN sent_at_instant TO sent_at;
ALTER TABLE jobs DROP COLUMN result_file;
ALTER TABLE jobs DROP COLUMN result_expires_at;
CREATE INDEX failed_logins_by_login ON failed_logins (login, at);
CREATE INDEX drafts_by_update ON drafts (updated_at);
CREATE INDEX drafts_by_admin ON drafts (admin_id, updated_at);
CREATE INDEX mails_due ON mails (status, next_attempt_at);
