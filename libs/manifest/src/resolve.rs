//! Derived views of an app manifest that the API applies: per-process settings (top-level
//! keys describe `web` unless `processes` has a `web` entry), env as strings, lifecycle.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::size::{parse_log_rate, parse_size_mb};
use crate::{AppManifest, HealthChecks};

/// Settings for one process type, sizes converted. `None` means "not given: keep current".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSpec {
    pub process_type: String,
    /// `Some(None)` resets the command to the detected one.
    pub command: Option<Option<String>>,
    pub instances: Option<i64>,
    pub memory_mb: Option<u64>,
    pub disk_mb: Option<u64>,
    /// Bytes per second, -1 unlimited.
    pub log_rate_bps: Option<i64>,
    pub user: Option<String>,
    /// Health checks with `none` already mapped to `process`.
    pub health: HealthChecks,
}

impl AppManifest {
    /// The processes this manifest configures, in order (`web` first when present).
    /// Unparseable sizes become `None`; call [`crate::Manifest::validate`] first.
    pub fn process_specs(&self) -> Vec<ProcessSpec> {
        let mut specs = Vec::new();
        let web_entry = self.processes.iter().flatten().find(|p| p.process_type == "web");
        let top = ProcessSpec {
            process_type: "web".to_string(),
            command: self.command.clone(),
            instances: self.instances,
            memory_mb: self.memory.as_deref().and_then(|m| parse_size_mb(m).ok()),
            disk_mb: self.disk_quota.as_deref().and_then(|d| parse_size_mb(d).ok()),
            log_rate_bps: self
                .log_rate_limit_per_second
                .as_deref()
                .and_then(|l| parse_log_rate(l).ok()),
            user: None,
            health: normalized(&self.health),
        };
        if web_entry.is_none()
            && top != (ProcessSpec { process_type: "web".to_string(), ..ProcessSpec::default() })
        {
            specs.push(top);
        }
        let (web, others): (Vec<_>, Vec<_>) =
            self.processes.iter().flatten().partition(|p| p.process_type == "web");
        for p in web.into_iter().take(1).chain(others) {
            specs.push(ProcessSpec {
                process_type: p.process_type.clone(),
                command: p.command.clone(),
                instances: p.instances,
                memory_mb: p.memory.as_deref().and_then(|m| parse_size_mb(m).ok()),
                disk_mb: p.disk_quota.as_deref().and_then(|d| parse_size_mb(d).ok()),
                log_rate_bps: p
                    .log_rate_limit_per_second
                    .as_deref()
                    .and_then(|l| parse_log_rate(l).ok()),
                user: p.user.clone(),
                health: normalized(&p.health),
            });
        }
        specs
    }

    /// `env` with every value as a string (numbers and booleans as written, null as "").
    pub fn env_strings(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in self.env.iter().flatten() {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            out.insert(k.clone(), text);
        }
        out
    }

    /// `docker` when a `docker` key is present, else `lifecycle` or `buildpack`.
    pub fn lifecycle_type(&self) -> &str {
        if self.docker.is_some() {
            return "docker";
        }
        self.lifecycle.as_deref().unwrap_or("buildpack")
    }

    /// Requested buildpacks: `buildpacks`, or the legacy `buildpack` (`default`/`null` mean
    /// auto-detect, i.e. `[]`); `None` when neither key is present.
    pub fn requested_buildpacks(&self) -> Option<Vec<String>> {
        if let Some(list) = &self.buildpacks {
            return Some(list.clone());
        }
        self.buildpack.as_ref().map(|b| match b.as_str() {
            "default" | "null" | "" => Vec::new(),
            other => vec![other.to_string()],
        })
    }
}

fn normalized(health: &HealthChecks) -> HealthChecks {
    let map = |t: &Option<String>| {
        t.as_ref().map(|t| if t == "none" { "process".to_string() } else { t.clone() })
    };
    HealthChecks {
        health_check_type: map(&health.health_check_type),
        readiness_health_check_type: map(&health.readiness_health_check_type),
        ..health.clone()
    }
}
