-- The LVS profile of a function code as the system admin set it (issue 14,
-- item 6): it replaces the guide's table (fonctions.csv) for that code. A NULL
-- profile: the code's people are not exported to La Vie Scolaire.
CREATE TABLE lvs_profiles (
    function_code TEXT PRIMARY KEY NOT NULL,
    lvs_profile TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL
);
