-- Administrators, sessions, API tokens, drafts of the web wizard and import jobs.
-- Times are unix seconds (INTEGER) so that one SQL text serves both backends.
CREATE TABLE admins (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL CHECK (login = lower(login)),
    password_hash TEXT NOT NULL,
    system BOOLEAN NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX admins_login ON admins (login);

CREATE TABLE admin_establishments (
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    uai TEXT NOT NULL REFERENCES establishments (uai),
    PRIMARY KEY (admin_id, uai)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE TABLE failed_logins (
    login TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX failed_logins_by_login ON failed_logins (login, at);

CREATE TABLE saved_mappings (
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    profile TEXT NOT NULL,
    overrides TEXT NOT NULL,
    PRIMARY KEY (admin_id, profile)
);

CREATE TABLE drafts (
    id BIGSERIAL PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    file_bytes BYTEA NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    draft_id BIGINT NOT NULL REFERENCES drafts (id) ON DELETE CASCADE,
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    progress TEXT NOT NULL,
    report TEXT,
    result_file BYTEA,
    import_id BIGINT,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    result_expires_at BIGINT
);
CREATE INDEX jobs_by_status ON jobs (status, id);
