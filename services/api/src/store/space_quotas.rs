//! The `space_quotas` table family.
