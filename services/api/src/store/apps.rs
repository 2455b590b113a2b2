//! The `apps` table family.
