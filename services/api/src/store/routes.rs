//! The `routes` table family.
