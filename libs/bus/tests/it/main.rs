//! The conformance suite: every behaviour of the `Bus` trait, run against both the in-process
//! bus and a real `nats-server` started on a free port.

mod conformance;
mod reconnect;
