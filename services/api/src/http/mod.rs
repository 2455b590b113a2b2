//! The HTTP layer: routers grouped by audience, extractors, presenters, CF errors, and lists
//! (`list` builds every list endpoint over `paging`'s query and page).

pub mod apps;
pub mod brokers;
pub mod buildpacks;
pub mod builds;
pub mod deployments;
pub mod domains;
pub mod droplets;
pub mod events;
pub mod extract;
pub mod feature_flags;
pub mod internal;
pub mod jobs;
pub mod list;
pub mod managed;
pub mod manifest;
pub mod metadata;
pub mod orgs;
pub mod packages;
pub mod paging;
pub mod processes;
pub mod quotas;
pub mod roles;
pub mod root;
pub mod route_bindings;
pub mod routes;
pub mod services;
pub mod space_quotas;
pub mod spaces;
pub mod ssh;
pub mod stats;
pub mod tasks;
pub mod uaa;
pub mod upload;
pub mod usage;
pub mod util;
