-- What the academic feed (AAF) says of an establishment besides its UAI and
-- name. The feed's persons name their structures by ENTStructureJointure
-- (`4931$ENS$…`), not by UAI: the jointure is kept so that a later delta feed
-- without its EtabEducNat file still resolves them. NULL for establishments
-- created by hand or by a CSV import.
ALTER TABLE establishments ADD COLUMN aaf_jointure TEXT;
ALTER TABLE establishments ADD COLUMN structure_type TEXT;
ALTER TABLE establishments ADD COLUMN city TEXT;
ALTER TABLE establishments ADD COLUMN academy TEXT;
CREATE UNIQUE INDEX establishments_by_aaf_jointure ON establishments (aaf_jointure);

-- A pupil's national identifier (INE), from the feed's Eleve file.
ALTER TABLE users ADD COLUMN ine TEXT;

-- A pupil and a person in charge of them, as the feed states it
-- (ENTElevePersRelEleve on the pupil's side, ENTAuxPersRelEleveEleve on the
-- parent's). relation: the family link's code (10 mother, 20 father…).
CREATE TABLE relationships (
    parent_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    relation TEXT,
    legal_guardian BOOLEAN NOT NULL,
    financial BOOLEAN NOT NULL,
    contact BOOLEAN NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX relationships_by_child ON relationships (child_id, parent_id);

-- The CSV key an account had before a reconciliation gave it its AAF key: a
-- later CSV file with the old key finds the account instead of creating a
-- duplicate.
CREATE TABLE former_keys (
    sync_key TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
