//! The domain: the api's rules and orchestration between the HTTP layer and the store — app
//! lifecycle, cascading deletes, desired-state sync with the scheduler, manifest apply and the
//! jobs that run them. Access decisions stay in `crate::access`.
//!
//! It never parses a request or renders a response, and never writes SQL: it calls the store,
//! inside a transaction when a change spans several statements.

pub mod admin;
pub mod apps;
pub mod brokers;
pub mod deletion;
pub mod deployments;
pub mod desired;
pub mod docker;
pub mod droplets;
pub mod env_groups;
pub mod events;
pub mod export;
pub mod feature_flags;
pub mod jobs;
pub mod managed;
pub mod manifest;
pub mod osb;
pub mod quotas;
pub mod resync;
pub mod revisions;
pub mod routing;
pub mod services;
pub mod ssh;
pub mod staging;
pub mod staging_requests;
pub mod tasks;
pub mod usage_events;
pub mod users;
