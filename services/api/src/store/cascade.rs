//! The `cascade` table family.
