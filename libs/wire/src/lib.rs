//! Wire types shared by every service and the CLI: the messages on the bus, the bodies of the
//! internal HTTP APIs between services, and the Cloud Foundry shapes we stay compatible with.
//!
//! This crate holds data and the rules of its encoding only. It must never do I/O, hold state,
//! or depend on a service crate.

pub mod drains;
pub mod envelope;
pub mod events;
pub mod lrp;
pub mod routing;
pub mod ssh;
pub mod staging;
pub mod subjects;
pub mod task;
pub mod uaa;
pub mod v3;

mod int_string;

pub use envelope::{Envelope, LogStream};
