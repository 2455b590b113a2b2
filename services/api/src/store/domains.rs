//! The `domains` table family.
