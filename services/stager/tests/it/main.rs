//! Stager integration tests: a fake api (HTTP) and an in-process bus around a real stager
//! staging the fixtures in runc containers on the test stack (root, runc, the built stack).

mod bench;
mod claims;
mod failures;
mod harness;
mod run_droplet;
mod staging;
