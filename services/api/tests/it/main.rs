//! The api over HTTP, on both engines.

mod harness;
mod push;
mod tenancy;
mod uaa;
mod upload;
