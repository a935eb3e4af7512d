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
