-- Import history ("Suivi Synchros", SPEC §7) and the mail queue (issue 4).

-- How the import came in (cli, web, api, schedule), who ran it from the web,
-- why it failed, and where its notice goes.
ALTER TABLE imports ADD COLUMN channel TEXT NOT NULL DEFAULT 'cli';
ALTER TABLE imports ADD COLUMN admin_id BIGINT REFERENCES admins (id) ON DELETE SET NULL;
ALTER TABLE imports ADD COLUMN error TEXT;
ALTER TABLE imports ADD COLUMN notify TEXT;
CREATE INDEX imports_recent ON imports (started_at, id);

-- One row per establishment an import touched: the history's filter and an
-- establishment admin's view go through this index, never a scan of imports.
CREATE TABLE import_establishments (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    uai TEXT NOT NULL,
    PRIMARY KEY (import_id, uai)
);
CREATE INDEX import_establishments_by_uai ON import_establishments (uai, import_id);
INSERT INTO import_establishments (import_id, uai)
SELECT DISTINCT id, u FROM imports, unnest(string_to_array(establishments, ',')) AS u WHERE u <> '';

-- The result file (cleartext passwords) of every applied import, whatever its
-- door, and its printable credential slips (JSON), kept until expires_at
-- (unix seconds) then deleted.
CREATE TABLE import_results (
    import_id BIGINT PRIMARY KEY REFERENCES imports (id) ON DELETE CASCADE,
    content BYTEA NOT NULL,
    slips TEXT NOT NULL DEFAULT '[]',
    expires_at BIGINT NOT NULL
);
INSERT INTO import_results (import_id, content, expires_at)
SELECT import_id, result_file, result_expires_at FROM jobs
WHERE import_id IS NOT NULL AND result_file IS NOT NULL AND result_expires_at IS NOT NULL;
UPDATE jobs SET result_file = NULL;

-- Durable mail queue: a notice is written here first, then sent; a failed send
-- is retried with backoff (next_attempt_at, unix seconds) and never blocks an import.
CREATE TABLE mails (
    id BIGSERIAL PRIMARY KEY,
    import_id BIGINT REFERENCES imports (id) ON DELETE SET NULL,
    recipients TEXT NOT NULL,
    cc TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    attachment_name TEXT,
    attachment BYTEA,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX mails_due ON mails (status, next_attempt_at);
CREATE INDEX mails_by_import ON mails (import_id);
