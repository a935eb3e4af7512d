-- An account active in other establishments that an import attached to the
-- importer's (the admin confirmed it): one row per establishment joined and
-- establishment where it already was, so
-- that its admins find it in their history and are told by mail.
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    import_id INTEGER NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    -- The establishment the import attached the account to.
    attached_uai TEXT NOT NULL,
    -- The establishment where the account already was.
    other_uai TEXT NOT NULL
);
CREATE INDEX attachments_by_other ON attachments (other_uai, at);
CREATE INDEX attachments_by_import ON attachments (import_id);
