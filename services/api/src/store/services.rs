//! The `services` table family.
