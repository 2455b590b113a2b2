//! The `route_bindings` table family.
