-- CC's app and service usage events, as billing and metering read them: `kind` is `app` or
-- `service`, `data` the event as the API renders it (JSON, without guid and times).
CREATE TABLE usage_events (
    guid TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX usage_events_by_kind ON usage_events (kind, created_at);
