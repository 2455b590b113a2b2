//! The stager's typed configuration (defaults = `paasd dev`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How staging containers are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A runc container on the stack rootfs (own PID/mount/UTS/IPC namespaces, cgroup limits).
    Runc,
    /// The builder as a plain child process on the host rootfs: for machines without root.
    /// No isolation and no memory limit; never for multi-tenant use.
    Process,
}

/// Where Debian keeps the CA bundle (host and stack alike).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `/readyz` and `/metrics`.
    pub status_addr: SocketAddr,
    /// The api, for tokens (`<api_url>/oauth/token`); package/droplet URLs come in requests.
    pub api_url: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// Where stacks live (`stack::find(stacks_dir, name)`).
    pub stacks_dir: PathBuf,
    /// Scratch dirs, the buildpack cache and the app caches.
    pub work_dir: PathBuf,
    /// Stagings run at once.
    pub max_concurrent: usize,
    /// Stagings accepted and waiting beyond `max_concurrent`; more fail at once as overloaded.
    pub max_queued: usize,
    /// Used when a request says 0.
    pub default_timeout_secs: u64,
    pub default_memory_mb: u64,
    pub default_disk_mb: u64,
    pub backend: Backend,
    /// Write an OCI image (layout under `<work_dir>/oci`) for each droplet.
    pub write_images: bool,
    /// Trusted CA bundle mounted into staging containers at
    /// `/etc/ssl/certs/ca-certificates.crt` (and named by `SSL_CERT_FILE`, `PIP_CERT`,
    /// `NODE_EXTRA_CA_CERTS`), for registries behind a TLS proxy; ignored when absent.
    pub trusted_ca_file: PathBuf,
    /// Seconds between heartbeats (claims again) of each staging this stager holds; well under
    /// the api's `staging_heartbeat_timeout_secs` (30), after which the api fails the build.
    pub heartbeat_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let data = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib"))
            .join(".local/share/paas");
        Self {
            status_addr: SocketAddr::from(([127, 0, 0, 1], 9400)),
            api_url: "http://127.0.0.1:9000".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            stacks_dir: data.join("stacks"),
            work_dir: data.join("stager"),
            max_concurrent: 2,
            max_queued: 16,
            default_timeout_secs: 900,
            default_memory_mb: 1024,
            default_disk_mb: 4096,
            backend: Backend::Runc,
            write_images: true,
            trusted_ca_file: PathBuf::from(CA_BUNDLE),
            heartbeat_secs: 5,
        }
    }
}

impl Config {
    /// One clear line for the first bad value.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent == 0 {
            return Err("max_concurrent must be at least 1".into());
        }
        if self.default_timeout_secs == 0 {
            return Err("default_timeout_secs must be at least 1".into());
        }
        if self.heartbeat_secs == 0 {
            return Err("heartbeat_secs must be at least 1".into());
        }
        if !self.api_url.starts_with("http://") && !self.api_url.starts_with("https://") {
            return Err(format!("api_url {:?} is not an http(s) URL", self.api_url));
        }
        Ok(())
    }
}
