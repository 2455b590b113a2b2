//! `paasd`'s configuration: one TOML document with a section per service, layered as
//! defaults → file → `PAAS_*` environment variables (kit::config).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The services `paasd` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    Logs,
    Api,
    Scheduler,
    Cell,
    Stager,
    Router,
    Ssh,
    Dashboard,
}

impl ServiceName {
    /// Start order (shutdown runs in reverse): logs first so everyone's logs have a home, the
    /// router last so traffic arrives once backends can be registered.
    pub const ALL: [ServiceName; 8] = [
        ServiceName::Logs,
        ServiceName::Api,
        ServiceName::Scheduler,
        ServiceName::Cell,
        ServiceName::Stager,
        ServiceName::Router,
        ServiceName::Ssh,
        ServiceName::Dashboard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logs => "logs",
            Self::Api => "api",
            Self::Scheduler => "scheduler",
            Self::Cell => "cell",
            Self::Stager => "stager",
            Self::Router => "router",
            Self::Ssh => "ssh",
            Self::Dashboard => "dashboard",
        }
    }
}

impl FromStr for ServiceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|n| n.as_str() == s.trim()).ok_or_else(|| {
            format!(
                "unknown service {s:?} (known: api, stager, scheduler, cell, router, logs, ssh, dashboard)"
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// Everything in one process (`paasd dev`).
    Inprocess,
    /// A NATS server shared by all processes.
    Nats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    pub kind: BusKind,
    /// `nats://host:port[,nats://...]`.
    pub url: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { kind: BusKind::Inprocess, url: "nats://127.0.0.1:4222".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaasdConfig {
    /// Root of every service's state (`~/.local/share/paas`).
    pub data_dir: PathBuf,
    /// Services `paasd run` starts (ignored by `paasd dev`, which runs all).
    pub services: Vec<String>,
    /// Seconds in-flight work gets to finish on shutdown.
    pub shutdown_deadline_secs: u64,
    pub telemetry: kit::telemetry::TelemetryConfig,
    pub bus: BusConfig,
    pub api: api::Config,
    pub stager: stager::Config,
    pub scheduler: scheduler::Config,
    pub cell: cell::Config,
    pub router: router::Config,
    pub logs: logs::Config,
    pub ssh: ssh::Config,
    pub dashboard: dashboard::Config,
}

impl Default for PaasdConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            services: Vec::new(),
            shutdown_deadline_secs: 20,
            telemetry: kit::telemetry::TelemetryConfig::default(),
            bus: BusConfig::default(),
            api: api::Config::default(),
            stager: stager::Config::default(),
            scheduler: scheduler::Config::default(),
            cell: cell::Config::default(),
            router: router::Config::default(),
            logs: logs::Config::default(),
            ssh: ssh::Config::default(),
            dashboard: dashboard::Config::default(),
        }
    }
}

/// `$XDG_DATA_HOME/paas` or `~/.local/share/paas`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("paas");
    }
    let home =
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".local/share/paas")
}

impl PaasdConfig {
    /// Load defaults → `file` → environment, then apply `--data-dir` and `PAAS_ADMIN_PASSWORD`.
    pub fn load(
        file: Option<&Path>,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, kit::config::ConfigError> {
        let mut config: Self = kit::config::load(file, "PAAS")?;
        if let Some(d) = data_dir {
            config.data_dir = d;
        }
        if let Ok(pw) = std::env::var("PAAS_ADMIN_PASSWORD") {
            if !pw.is_empty() {
                config.api.admin_password = Some(pw);
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), kit::config::ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(kit::config::ConfigError::invalid("data_dir", "must not be empty"));
        }
        if self.bus.kind == BusKind::Nats
            && !self.bus.url.starts_with("nats://")
            && !self.bus.url.starts_with("tls://")
        {
            return Err(kit::config::ConfigError::invalid(
                "bus.url",
                "must start with nats:// or tls://",
            ));
        }
        for s in &self.services {
            ServiceName::from_str(s)
                .map_err(|m| kit::config::ConfigError::invalid("services", m))?;
        }
        Ok(())
    }

    /// The services named in `services`, in start order.
    pub fn selected(&self) -> Vec<ServiceName> {
        let mut out: Vec<ServiceName> =
            self.services.iter().filter_map(|s| s.parse().ok()).collect();
        out.sort();
        out.dedup();
        out
    }
}
