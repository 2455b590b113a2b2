-- A stager claims the STAGING build whose request it takes (the first claim wins) and keeps
-- it alive with a heartbeat (ms); a claimed build whose heartbeat stopped is failed by any
-- api. While a build is unclaimed, heartbeat_at is when its request was last sent again (its
-- created_at stands in before that), so an api sends it at most once a claim timeout.
ALTER TABLE builds ADD COLUMN stager_id TEXT;
ALTER TABLE builds ADD COLUMN heartbeat_at BIGINT;
