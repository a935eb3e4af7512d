-- Administrators, sessions, API tokens, drafts of the web wizard and import jobs.
-- Times are unix seconds (INTEGER) so that one SQL text serves both backends.
CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL CHECK (login = lower(login)),
    password_hash TEXT NOT NULL,
    system BOOLEAN NOT NULL,
    email TEXT,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX admins_login ON admins (login);

CREATE TABLE admin_establishments (
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    uai TEXT NOT NULL REFERENCES establishments (uai),
    PRIMARY KEY (admin_id, uai)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

CREATE TABLE failed_logins (
    login TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX failed_logins_by_login ON failed_logins (login, at);

CREATE TABLE saved_mappings (
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    profile TEXT NOT NULL,
    overrides TEXT NOT NULL,
    PRIMARY KEY (admin_id, profile)
);

CREATE TABLE drafts (
    id INTEGER PRIMARY KEY,
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    file_bytes BLOB NOT NULL,
    settings TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    draft_id INTEGER NOT NULL REFERENCES drafts (id) ON DELETE CASCADE,
    admin_id INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    progress TEXT NOT NULL,
    report TEXT,
    result_file BLOB,
    import_id INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    result_expires_at INTEGER
);
CREATE INDEX jobs_by_status ON jobs (status, id);
