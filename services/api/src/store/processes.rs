//! The `processes` table family.
