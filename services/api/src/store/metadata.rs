//! The `metadata` table family.
