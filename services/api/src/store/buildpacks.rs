//! The `buildpacks` table family.
