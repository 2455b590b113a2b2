//! The scheduler's data model (our Diego) and the bodies of the HTTP
//! APIs around it: api → scheduler (desired state), scheduler → cell (work), cell → scheduler
//! (presence, instance reports).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Domain of the api's long-running processes.
pub const CF_APPS_DOMAIN: &str = "cf-apps";

/// A desired long-running process: N identical instances of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredLrp {
    /// `<process guid>-<version>`; changes whenever anything but instances/routes/annotation does.
    pub process_guid: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    /// App guid: the log source id and the router's `app`.
    pub log_guid: String,
    /// `CELL` for app instances.
    #[serde(default = "default_log_source")]
    pub log_source: String,
    pub instances: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    #[serde(default)]
    pub max_pids: u32,
    /// Relative CPU weight; the api derives it from memory.
    #[serde(default)]
    pub cpu_weight: u32,
    /// Stack name the cell must offer (`rootfs` in Diego).
    pub stack: String,
    pub image: ImageRef,
    /// Start command run by the launcher.
    pub start_command: String,
    /// Environment for the app (user vars, VCAP_APPLICATION without the instance part, ...).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Container ports; the first is the app's `PORT` (8080).
    #[serde(default = "default_ports")]
    pub ports: Vec<u16>,
    pub health_check: HealthCheck,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub placement_tags: Vec<String>,
    /// Names for logs and metrics: app_name, space_name, organization_name, process_type, ...
    #[serde(default)]
    pub metric_tags: BTreeMap<String, String>,
    /// Bytes per second of app log output, -1 unlimited.
    #[serde(default = "unlimited")]
    pub log_rate_limit_bytes_per_second: i64,
    #[serde(default)]
    pub annotation: String,
}

fn default_domain() -> String {
    CF_APPS_DOMAIN.to_owned()
}
fn default_log_source() -> String {
    "CELL".to_owned()
}
fn default_ports() -> Vec<u16> {
    vec![8080]
}
fn unlimited() -> i64 {
    -1
}

/// What the container runs from: a staged droplet on a stack, or a docker image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub droplet_guid: String,
    /// Where a cell downloads the droplet (an api internal URL); empty for docker images.
    pub droplet_url: String,
    /// Hex SHA-256 of the droplet `.tgz`; the cell refuses anything else.
    pub droplet_sha256: String,
    /// A docker droplet: the image the cell pulls and runs instead of a droplet and a stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerImage>,
}

/// The stack name of docker images: cells that can pull and run images offer it.
pub const DOCKER_STACK: &str = "docker";

/// A docker image as staging resolved it, with what the cell runs of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerImage {
    /// `registry/repository@sha256:…`.
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default)]
    pub config: DockerConfig,
}

impl std::fmt::Debug for DockerImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerImage")
            .field("image", &self.image)
            .field("username", &self.username)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The image's own process and settings (a docker droplet's `execution_metadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `user[:group]`, names or numbers; empty is root.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    /// TCP ports the image exposes, ascending; the first becomes the app's `PORT`.
    #[serde(default)]
    pub exposed_ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: HealthCheckType,
    /// Path for `http` checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Per-check timeout, seconds (1).
    #[serde(default = "one")]
    pub invocation_timeout_secs: u64,
    /// Liveness interval once running, seconds (30).
    #[serde(default = "thirty")]
    pub interval_secs: u64,
    /// Time allowed to become healthy, seconds (60).
    #[serde(default = "sixty")]
    pub start_timeout_secs: u64,
}

fn one() -> u64 {
    1
}
fn thirty() -> u64 {
    30
}
fn sixty() -> u64 {
    60
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            kind: HealthCheckType::Port,
            endpoint: None,
            invocation_timeout_secs: 1,
            interval_secs: 30,
            start_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckType {
    Port,
    Http,
    Process,
}

/// One route of a desired LRP (`cf-router` entry): `host[/path]` on a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// `host.domain[/path]`, lowercase, no scheme.
    pub uri: String,
    #[serde(default = "port_8080")]
    pub port: u16,
    /// `http1` or `http2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `round-robin` or `least-connection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadbalancing: Option<String>,
    /// The https URL of the route service bound to this route: the router sends each request
    /// there first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_service_url: Option<String>,
}

fn port_8080() -> u16 {
    8080
}

/// The fields of a desired LRP that may change in place (everything else is a new guid).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredLrpUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_tags: Option<BTreeMap<String, String>>,
}

/// Body of `PUT /v1/desired_lrps` bulk sync: the complete desired set of one domain; the
/// scheduler removes what is not listed and creates or updates what is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredLrpSync {
    pub domain: String,
    pub desired_lrps: Vec<DesiredLrp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActualState {
    Unclaimed,
    Claimed,
    Running,
    Crashed,
}

impl ActualState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unclaimed => "UNCLAIMED",
            Self::Claimed => "CLAIMED",
            Self::Running => "RUNNING",
            Self::Crashed => "CRASHED",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Presence {
    #[default]
    Ordinary,
    Evacuating,
    Suspect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub host_port: u16,
}

/// One instance as the scheduler knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActualLrp {
    pub process_guid: String,
    pub index: u32,
    pub domain: String,
    #[serde(default)]
    pub instance_guid: String,
    #[serde(default)]
    pub cell_id: String,
    pub state: ActualState,
    #[serde(default)]
    pub presence: Presence,
    /// Host (cell) address the ports are mapped on.
    #[serde(default)]
    pub address: String,
    /// Container address.
    #[serde(default)]
    pub instance_address: String,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    #[serde(default)]
    pub crash_count: u32,
    #[serde(default)]
    pub crash_reason: String,
    #[serde(default)]
    pub placement_error: String,
    /// Unix ns of the last state change.
    pub since: i64,
    #[serde(default = "yes")]
    pub routable: bool,
}

fn yes() -> bool {
    true
}

/// Identity of one started container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceKey {
    pub process_guid: String,
    pub index: u32,
    pub instance_guid: String,
}

/// Change events on the scheduler's `GET /v1/events` stream (server-sent events, one JSON each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LrpEvent {
    ActualLrpCreated { actual_lrp: ActualLrp },
    ActualLrpChanged { before: Box<ActualLrp>, after: Box<ActualLrp> },
    ActualLrpRemoved { actual_lrp: ActualLrp },
    ActualLrpCrashed { actual_lrp: ActualLrp },
    DesiredLrpChanged { process_guid: String },
    DesiredLrpRemoved { process_guid: String },
}

// ---- cells ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub containers: u32,
}

/// What a cell announces when it registers and on every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellPresence {
    pub cell_id: String,
    /// Base URL of the cell's internal API (`http://10.0.0.5:9300`).
    pub rep_url: String,
    #[serde(default)]
    pub zone: String,
    pub capacity: Capacity,
    /// Stacks this cell can run (`rootfs_provider_list`).
    pub stacks: Vec<String>,
    #[serde(default)]
    pub placement_tags: Vec<String>,
    #[serde(default)]
    pub optional_placement_tags: Vec<String>,
    /// True once the cell drains: it takes no new work.
    #[serde(default)]
    pub evacuating: bool,
}

/// A cell's answer to `GET /internal/v1/state`: free resources and the work it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellState {
    pub cell_id: String,
    pub available: Capacity,
    pub total: Capacity,
    pub instances: Vec<InstanceKey>,
    #[serde(default)]
    pub evacuating: bool,
    /// Containers being created right now (the auction's starting-container weight).
    #[serde(default)]
    pub starting: u32,
}

/// Scheduler → cell: start these instances (`POST /internal/v1/work`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub lrps: Vec<LrpStart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrpStart {
    pub desired: DesiredLrp,
    pub index: u32,
    pub instance_guid: String,
}

/// The cell's answer to [`Work`]: what it could not take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkResult {
    #[serde(default)]
    pub failed: Vec<InstanceKey>,
}

/// Scheduler → cell: stop one instance (`POST /internal/v1/stop`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    pub instance: InstanceKey,
}

/// The scheduler's answer to a claim (`POST /v1/actual_lrps/claim`): the desired LRP's routes
/// as they are now, read after the claim was stored. A cell whose instance was started with
/// other routes (they changed between the auction and the claim) announces these, unless a
/// [`RoutesUpdate`] reached it first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
}

/// Scheduler → cell: a desired LRP's routes changed (`POST /internal/v1/routes`); the cell's
/// instances of it register the new routes and unregister the ones that are gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutesUpdate {
    pub process_guid: String,
    pub routes: Vec<Route>,
}

/// The scheduler's answer to `POST /v1/actual_lrps/evacuate` from a draining cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvacuateResult {
    /// Keep the container running (and its routes) until told to stop; false: destroy it now.
    pub keep_container: bool,
}

/// Cell → scheduler reports (`POST /internal/v1/actual_lrps/{claim,start,crash,remove}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub instance: InstanceKey,
    pub cell_id: String,
    /// For `start`: where the instance answers.
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub instance_address: String,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// For `crash`: why (health check never passed, out of memory, exited with status N, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
}

impl InstanceReport {
    /// A report naming only the instance and the cell (claim, remove, evacuate).
    pub fn new(instance: InstanceKey, cell_id: impl Into<String>) -> Self {
        Self {
            instance,
            cell_id: cell_id.into(),
            address: String::new(),
            instance_address: String::new(),
            ports: Vec::new(),
            crash_reason: None,
            exit_status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_lrp_defaults_fill_in() {
        let d: DesiredLrp = serde_json::from_value(serde_json::json!({
            "process_guid": "p-1", "log_guid": "a", "instances": 2, "memory_mb": 256, "disk_mb": 1024,
            "stack": "bookworm", "start_command": "./run",
            "image": {"droplet_guid": "d", "droplet_url": "http://api/internal/v1/droplets/d", "droplet_sha256": "00"},
            "health_check": {"type": "http", "endpoint": "/health"}
        }))
        .expect("parse");
        assert_eq!(d.domain, CF_APPS_DOMAIN);
        assert_eq!(d.ports, vec![8080]);
        assert_eq!(d.health_check.start_timeout_secs, 60);
        assert_eq!(d.log_rate_limit_bytes_per_second, -1);
    }

    #[test]
    fn states_are_screaming() {
        assert_eq!(serde_json::to_string(&ActualState::Unclaimed).expect("ser"), "\"UNCLAIMED\"");
        assert_eq!(ActualState::Crashed.as_str(), "CRASHED");
    }
}
