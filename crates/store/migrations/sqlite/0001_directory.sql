-- The directory: establishments, users, memberships, groups, import history.
CREATE TABLE establishments (
    uai TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    sync_key TEXT NOT NULL,
    profile TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('csv', 'aaf', 'manual')),
    protected BOOLEAN NOT NULL DEFAULT 0,
    civility TEXT,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    -- lowercase ASCII of the last name: indexed prefix search (SPEC §9)
    last_name_fold TEXT NOT NULL,
    first_name_fold TEXT NOT NULL,
    birth_date TEXT,
    subject TEXT,
    function_code TEXT,
    class_name TEXT,
    address TEXT,
    postal_code TEXT,
    city TEXT,
    landline TEXT,
    mobile TEXT,
    email TEXT,
    login TEXT NOT NULL CHECK (login = lower(login)),
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    expires_at TEXT,
    allowed_ips TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_login_at TEXT,
    deactivated_at TEXT,
    deactivated_by_import INTEGER
);
CREATE UNIQUE INDEX users_sync_key ON users (sync_key);
CREATE UNIQUE INDEX users_login_ci ON users (lower(login));
CREATE INDEX users_last_name_fold ON users (last_name_fold, first_name_fold);

CREATE TABLE memberships (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uai TEXT NOT NULL REFERENCES establishments (uai),
    role TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    deactivated_at TEXT,
    deactivated_by_import INTEGER,
    PRIMARY KEY (user_id, uai)
);
CREATE INDEX memberships_by_uai ON memberships (uai, active, user_id);

CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    uai TEXT NOT NULL REFERENCES establishments (uai),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (uai, kind, name)
);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE imports (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    actor TEXT NOT NULL,
    profile TEXT NOT NULL,
    establishments TEXT NOT NULL,
    complet BOOLEAN NOT NULL,
    options TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    merged INTEGER NOT NULL,
    deactivated INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    status TEXT NOT NULL
);
