//! The `droplets` table family.
