//! The `users` table family.
