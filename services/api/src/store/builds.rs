//! The `builds` table family.
