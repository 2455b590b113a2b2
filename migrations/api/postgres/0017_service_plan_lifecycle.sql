-- A plan stays while instances use it after its broker's catalog dropped it, no longer
-- available for new instances (CC's `active`); a managed instance records the plan's
-- `maintenance_info` it was made or last upgraded with, so an upgrade shows when the plan's
-- version moves on.
ALTER TABLE service_plans ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
ALTER TABLE service_instances ADD COLUMN maintenance_info TEXT NOT NULL DEFAULT '{}';
