-- Feature flags (CC's `feature_flags`): a row only for a flag an admin changed; a flag without
-- one has its default, which lives in the code (`domain::feature_flags`). The message, when
-- set, replaces the flag's name in the CF-FeatureDisabled error.
CREATE TABLE feature_flags (
    name TEXT PRIMARY KEY NOT NULL,
    enabled BIGINT NOT NULL,
    custom_error_message TEXT,
    updated_at BIGINT NOT NULL
);
