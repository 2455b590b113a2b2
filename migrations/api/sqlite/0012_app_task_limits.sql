-- CC's `apps.per_app_tasks`: how many tasks one app may have pending or running at once,
-- per org quota and per space quota (NULL: unlimited).
ALTER TABLE org_quotas ADD COLUMN per_app_tasks BIGINT;
ALTER TABLE space_quotas ADD COLUMN per_app_tasks BIGINT;
