-- Platform-wide settings of the api (signing keys, bootstrap facts), one row per name.
CREATE TABLE platform_settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
