//! Bus subjects, named once.

/// Route registrations from cells (and the api for its own route), gorouter JSON.
pub const ROUTER_REGISTER: &str = "router.register";
/// Route removals, gorouter JSON; matched on host + port + uris.
pub const ROUTER_UNREGISTER: &str = "router.unregister";
/// A router announces itself; emitters re-register everything at once.
pub const ROUTER_START: &str = "router.start";
/// Request/reply: an emitter asks a router for its intervals.
pub const ROUTER_GREET: &str = "router.greet";
/// Every `router.*` subject: a router takes them in one subscription, in bus order.
pub const ROUTER_ALL: &str = "router.*";
/// The api asks every stager to drop kept buildpack caches
/// ([`crate::staging::BuildpackCacheDelete`]).
pub const BUILDPACK_CACHE_DELETE: &str = "staging.cache.delete";
/// Staging requests from the api; stagers consume them in [`STAGING_QUEUE`].
pub const STAGING_REQUEST: &str = "staging.request";
/// Queue group shared by all stagers, so each build is staged exactly once.
pub const STAGING_QUEUE: &str = "stagers";
/// Instance lifecycle facts (crashes, placement failures) that the api records.
pub const APP_EVENTS: &str = "app.events";
/// Every log and metric envelope is published below this prefix.
pub const LOGS_PREFIX: &str = "logs";
/// What the aggregator subscribes to.
pub const LOGS_ALL: &str = "logs.>";
