-- The directory: establishments, users, memberships, groups, import history.
CREATE TABLE establishments (
    uai TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    sync_key TEXT NOT NULL,
    profile TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('csv', 'aaf', 'manual')),
    protected BOOLEAN NOT NULL DEFAULT FALSE,
    civility TEXT,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    -- lowercase ASCII of the last name, C collation: indexed prefix search (SPEC §9)
    last_name_fold TEXT COLLATE "C" NOT NULL,
    first_name_fold TEXT COLLATE "C" NOT NULL,
    birth_date DATE,
    subject TEXT,
    function_code TEXT,
    class_name TEXT,
    address TEXT,
    postal_code TEXT,
    city TEXT,
    landline TEXT,
    mobile TEXT,
    email TEXT,
    -- C collation so that range scans on lower(login) use the index
    login TEXT COLLATE "C" NOT NULL CHECK (login = lower(login)),
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ,
    allowed_ips TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ,
    deactivated_at TIMESTAMPTZ,
    deactivated_by_import BIGINT
);
CREATE UNIQUE INDEX users_sync_key ON users (sync_key);
CREATE UNIQUE INDEX users_login_ci ON users (lower(login));
CREATE INDEX users_last_name_fold ON users (last_name_fold, first_name_fold);

CREATE TABLE memberships (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uai TEXT NOT NULL REFERENCES establishments (uai),
    role TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    deactivated_at TIMESTAMPTZ,
    deactivated_by_import BIGINT,
    PRIMARY KEY (user_id, uai)
);
CREATE INDEX memberships_by_uai ON memberships (uai, active, user_id);

CREATE TABLE groups (
    id BIGSERIAL PRIMARY KEY,
    uai TEXT NOT NULL REFERENCES establishments (uai),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (uai, kind, name)
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE imports (
    id BIGSERIAL PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    actor TEXT NOT NULL,
    profile TEXT NOT NULL,
    establishments TEXT NOT NULL,
    complet BOOLEAN NOT NULL,
    options TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_size BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    merged BIGINT NOT NULL,
    deactivated BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    status TEXT NOT NULL
);
