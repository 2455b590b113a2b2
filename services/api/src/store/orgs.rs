//! The `orgs` table family.
