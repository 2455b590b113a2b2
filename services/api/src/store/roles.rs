//! The `roles` table family.
