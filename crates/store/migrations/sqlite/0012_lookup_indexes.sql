-- Lookups whose cost must not grow with the directory: an admin's
-- unfinished imports (home page), and what a Complet import deactivated
-- (its page and its restore).
CREATE INDEX drafts_by_admin ON drafts (admin_id, updated_at);
CREATE INDEX users_deactivated_by_import ON users (deactivated_by_import) WHERE deactivated_by_import IS NOT NULL;
CREATE INDEX memberships_deactivated_by_import ON memberships (deactivated_by_import) WHERE deactivated_by_import IS NOT NULL;
