//! The `keys` table family.
