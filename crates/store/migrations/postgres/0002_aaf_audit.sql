-- AAF feed runs, dismissed duplicate pairs, the audit log.

-- Which door an import came through: 'csv' (the wizard, the CLI) or 'aaf'
-- (the academic feed; its rows carry profile 'aaf', a feed holds several).
ALTER TABLE imports ADD COLUMN source TEXT NOT NULL DEFAULT 'csv';

-- "Pas un doublon": a pair of accounts never proposed again. By account id,
-- not sync key, because reconciliation changes keys and ids never change.
CREATE TABLE duplicate_dismissals (
    user_a BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dismissed_at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (user_a, user_b),
    CHECK (user_a < user_b)
);
CREATE INDEX duplicate_dismissals_b ON duplicate_dismissals (user_b);

-- Who did what, when, to whom (SPEC §11). details is a JSON object.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_log_recent ON audit_log (at, id);
CREATE INDEX audit_log_target ON audit_log (target);
