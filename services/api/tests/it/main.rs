//! The api over HTTP, on both engines.

mod brokers;
mod cf_reads;
mod crash_events;
mod deletion;
mod deployments;
mod docker;
mod domain_shares;
mod droplets;
mod feature_flags;
mod forged;
mod harness;
mod jobs;
mod labels;
mod layers;
mod matrix;
mod orgs;
mod push;
mod quotas;
mod route_bindings;
mod services;
mod ssh;
mod tasks;
mod tenancy;
mod uaa;
mod upload;
mod usage_events;
