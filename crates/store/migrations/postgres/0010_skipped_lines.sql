-- The lines an import skipped ("Ne pas importer les lignes en conflit"), as a
-- CSV to fix and re-import: kept with the result file, purged with it.
ALTER TABLE import_results ADD COLUMN skipped BYTEA;
