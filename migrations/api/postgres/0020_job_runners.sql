-- Each api process runs its jobs as a runner of its own (a guid taken at start) and keeps
-- them alive with a heartbeat (ms); a PROCESSING job whose heartbeat stopped is failed by any
-- api. Jobs from before have neither (their updated_at stands in for the heartbeat).
ALTER TABLE jobs ADD COLUMN runner TEXT;
ALTER TABLE jobs ADD COLUMN heartbeat_at BIGINT;
CREATE INDEX jobs_processing ON jobs (runner) WHERE state = 'PROCESSING';
