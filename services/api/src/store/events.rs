//! The `events` table family.
