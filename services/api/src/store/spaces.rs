//! The `spaces` table family.
