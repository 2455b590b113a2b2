//! End-to-end tests of the platform: real services, real containers, real routing. The tests
//! live in `tests/`; this crate has no code of its own and nothing depends on it.
