-- CC's environment variable groups: `running` (every app instance and task) and `staging`
-- (every staging), set by admins. `vars` is a JSON object of strings; a group without a row
-- is empty.
CREATE TABLE env_var_groups (
    name TEXT PRIMARY KEY NOT NULL,
    vars TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
