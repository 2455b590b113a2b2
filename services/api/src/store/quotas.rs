//! The `quotas` table family.
