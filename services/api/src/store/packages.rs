//! The `packages` table family.
