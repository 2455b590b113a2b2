-- An api takes over a service operation left in progress only when no job runs it: the
-- running jobs of a resource are looked up by its guid.
CREATE INDEX jobs_resource_processing ON jobs (resource_guid) WHERE state = 'PROCESSING';
