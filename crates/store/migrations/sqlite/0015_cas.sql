-- The CAS server (issue 14): the services the system admin registered, the
-- single sign-on sessions of the people, and the tickets given to services.
-- Sessions and tickets live here, not in a server's memory, so that several
-- `annuaire serve` on one database serve the same people.
CREATE TABLE cas_services (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url_prefix TEXT NOT NULL,
    -- UAIs separated by commas; empty: the people of every establishment.
    establishments TEXT NOT NULL,
    -- The attributes released at validation, names separated by commas.
    attributes TEXT NOT NULL,
    proxy BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

-- The ticket-granting ticket: the cookie holds it, the table its SHA-256.
CREATE TABLE sso_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    authenticated_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    -- Signed in with a distributed password: no ticket until it is changed.
    password_change_pending BOOLEAN NOT NULL
);
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);
CREATE INDEX sso_sessions_expiry ON sso_sessions (expires_at);

CREATE TABLE cas_tickets (
    ticket_hash TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL REFERENCES sso_sessions (id_hash) ON DELETE CASCADE,
    -- ST (service ticket), PT (proxy ticket) or PGT (proxy-granting ticket).
    kind TEXT NOT NULL,
    -- For a PT or a PGT: the proxy callbacks it went through, as a JSON
    -- array, the latest first.
    proxies TEXT NOT NULL,
    -- The service it was issued for (a PGT: the proxy's callback).
    service TEXT NOT NULL,
    from_new_login BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    -- Set by the first validation, successful or not (single use; a PGT is
    -- used again until its session ends).
    consumed_at TEXT,
    -- The ticket itself, kept once validated (spent, so harmless): the
    -- single logout names it to the service.
    validated_ticket TEXT
);
CREATE INDEX cas_tickets_session ON cas_tickets (session_hash);

-- "Mot de passe oublié": single-use links mailed to the account's address
-- (the SHA-256 of the link's token, as for sessions).
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX password_resets_user ON password_resets (user_id, created_at);
