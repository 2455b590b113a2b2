//! Integration tests for `manifest`.

mod diffs;
mod fields;
mod invalid;
mod routes_and_sizes;
