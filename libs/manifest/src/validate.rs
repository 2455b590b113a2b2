//! Validation of every app of a manifest, collecting all errors with CC's wording.

use std::collections::BTreeMap;

use crate::route::parse_route;
use crate::size::{parse_log_rate, parse_size_mb, SizeError};
use crate::{AppManifest, HealthChecks, Manifest};

/// One validation failure. `app_index` is `None` for manifest-level problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub app_index: Option<usize>,
    pub app_name: String,
    pub message: String,
}

const HEALTH_TYPES: [&str; 3] = ["port", "process", "http"];
const LOADBALANCING: [&str; 2] = ["round-robin", "least-connection"];
const MAX_INSTANCES: i64 = 2_000_000;

impl Manifest {
    /// Checks the whole manifest and returns every error found (CC answers 422 with one
    /// `errors[]` entry per message).
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        let top = |message: &str| ValidationError {
            app_index: None,
            app_name: String::new(),
            message: message.to_string(),
        };
        if let Some(version) = &self.version {
            if !(version.as_u64() == Some(1) || version.as_str() == Some("1")) {
                errors.push(top(
                    "Unsupported manifest schema version. Currently supported versions: [1].",
                ));
            }
        }
        if self.applications.is_empty() {
            errors.push(top("Cannot parse manifest with no 'applications' field."));
        }
        for (index, app) in self.applications.iter().enumerate() {
            for message in app.validation_messages() {
                errors.push(ValidationError {
                    app_index: Some(index),
                    app_name: app.name.clone(),
                    message,
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl AppManifest {
    /// All problems of this app, each a full CC-style message.
    pub fn validation_messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push("Name must not be empty".to_string());
        }
        sizes(&mut out, "web", &self.memory, &self.disk_quota, &self.log_rate_limit_per_second);
        self.check_processes(&mut out);
        if self.buildpack.is_some() && self.buildpacks.is_some() {
            out.push("Buildpack and Buildpacks fields cannot be used together.".to_string());
        }
        if self.docker.is_some() && (self.buildpack.is_some() || self.buildpacks.is_some()) {
            out.push("Cannot specify both buildpack(s) and docker keys".to_string());
        }
        if let Some(docker) = &self.docker {
            if docker.image.trim().is_empty() {
                out.push("Docker image must be present".to_string());
            }
        }
        if let Some(lifecycle) = &self.lifecycle {
            if !["buildpack", "docker", "cnb"].contains(&lifecycle.as_str()) {
                out.push("Lifecycle type must be 'buildpack', 'docker' or 'cnb'".to_string());
            }
        }
        self.check_routes(&mut out);
        self.check_sidecars(&mut out);
        if self.services.iter().flatten().any(|s| s.name().trim().is_empty()) {
            out.push("Service instance name must not be empty".to_string());
        }
        out
    }

    fn check_processes(&self, out: &mut Vec<String>) {
        let listed = self.processes.iter().flatten();
        if listed.clone().any(|p| p.process_type.trim().is_empty()) {
            out.push("All Processes must specify a type".to_string());
        }
        let mut counts = BTreeMap::new();
        for p in listed.clone() {
            *counts.entry(p.process_type.as_str()).or_insert(0) += 1;
        }
        for (kind, n) in counts {
            if n > 1 && !kind.trim().is_empty() {
                out.push(format!("Process \"{kind}\" may only be present once"));
            }
        }
        for p in listed {
            sizes(out, &p.process_type, &p.memory, &p.disk_quota, &p.log_rate_limit_per_second);
            if let Some(user) = &p.user {
                if user.is_empty() || user.len() > 255 {
                    out.push(format!(
                        "Process \"{}\": User must be between 1 and 255 characters",
                        p.process_type
                    ));
                }
            }
        }
        for spec in self.process_specs() {
            let prefix = format!("Process \"{}\": ", spec.process_type);
            let mut push = |m: &str| out.push(format!("{prefix}{m}"));
            if spec.memory_mb == Some(0) {
                push("Memory must be greater than 0MB");
            }
            if spec.disk_mb == Some(0) {
                push("Disk quota must be greater than 0MB");
            }
            match spec.instances {
                Some(i) if i < 0 => push("Instances must be greater than or equal to 0"),
                Some(i) if i > MAX_INSTANCES => {
                    push("Instances must be less than or equal to 2000000")
                }
                _ => {}
            }
            if let Some(Some(command)) = &spec.command {
                if command.is_empty() || command.len() > 4096 {
                    push("Command must be between 1 and 4096 characters");
                }
            }
            health(&mut push, &spec.health);
        }
    }

    fn check_routes(&self, out: &mut Vec<String>) {
        for route in self.routes.iter().flatten() {
            if route.route.trim().is_empty() {
                out.push("Routes must be a list of route objects".to_string());
                continue;
            }
            if let Err(e) = parse_route(&route.route) {
                out.push(e.to_string());
            }
            if let Some(protocol) = &route.protocol {
                if !["http1", "http2", "tcp"].contains(&protocol.as_str()) {
                    out.push("Route protocol must be 'http1', 'http2' or 'tcp'.".to_string());
                }
            }
            for (key, value) in route.options.iter().flatten() {
                if key != "loadbalancing" {
                    out.push(format!(
                        "Route '{}' contains invalid route option '{key}'. Valid keys: 'loadbalancing'",
                        route.route
                    ));
                } else if !value.as_str().is_some_and(|v| LOADBALANCING.contains(&v)) {
                    let shown =
                        value.as_str().map(str::to_string).unwrap_or_else(|| format!("{value:?}"));
                    out.push(format!(
                        "Cannot use loadbalancing value '{shown}' for Route '{}'; Valid values are: '{}'",
                        route.route,
                        LOADBALANCING.join(", ")
                    ));
                }
            }
        }
        if self.random_route == Some(true) && self.default_route == Some(true) {
            out.push("Random-route and default-route may not be used together".to_string());
        }
    }

    fn check_sidecars(&self, out: &mut Vec<String>) {
        for sidecar in self.sidecars.iter().flatten() {
            let prefix = if sidecar.name.trim().is_empty() {
                out.push("Sidecar name can't be blank".to_string());
                "sidecar: ".to_string()
            } else {
                format!("Sidecar \"{}\": ", sidecar.name)
            };
            if sidecar.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                out.push(format!("{prefix}Command can't be blank"));
            }
            if sidecar.process_types.is_empty() {
                out.push(format!("{prefix}Process types must have at least 1 process_type"));
            }
            if let Some(memory) = &sidecar.memory {
                match parse_size_mb(memory) {
                    Err(e) => out.push(format!("{prefix}Memory {e}")),
                    Ok(0) => out.push(format!("{prefix}Memory in mb must be greater than 0")),
                    Ok(_) => {}
                }
            }
        }
    }
}

fn sizes(
    out: &mut Vec<String>,
    kind: &str,
    memory: &Option<String>,
    disk: &Option<String>,
    log: &Option<String>,
) {
    let mut report = |label: &str, result: Result<(), SizeError>| {
        if let Err(e) = result {
            out.push(format!("Process \"{kind}\": {label} {e}"));
        }
    };
    if let Some(m) = memory {
        report("Memory", parse_size_mb(m).map(drop));
    }
    if let Some(d) = disk {
        report("Disk quota", parse_size_mb(d).map(drop));
    }
    if let Some(l) = log {
        report("Log rate limit per second", parse_log_rate(l).map(drop));
    }
}

fn health(push: &mut impl FnMut(&str), h: &HealthChecks) {
    let kinds = [
        ("Health check type", &h.health_check_type),
        ("Readiness health check type", &h.readiness_health_check_type),
    ];
    for (label, kind) in kinds {
        if kind.as_deref().is_some_and(|t| !HEALTH_TYPES.contains(&t)) {
            push(&format!("{label} must be \"port\", \"process\", or \"http\""));
        }
    }
    let endpoints = [
        ("Health check http endpoint", &h.health_check_http_endpoint),
        ("Readiness health check http endpoint", &h.readiness_health_check_http_endpoint),
    ];
    for (label, endpoint) in endpoints {
        if endpoint
            .as_deref()
            .is_some_and(|e| !e.starts_with('/') || e.contains(char::is_whitespace))
        {
            push(&format!("{label} must be a valid URI path"));
        }
    }
    let numbers = [
        ("Timeout", h.timeout),
        ("Health check invocation timeout", h.health_check_invocation_timeout),
        ("Health check interval", h.health_check_interval),
        ("Readiness health check invocation timeout", h.readiness_health_check_invocation_timeout),
        ("Readiness health check interval", h.readiness_health_check_interval),
    ];
    for (label, value) in numbers {
        if value.is_some_and(|v| v < 1) {
            push(&format!("{label} must be greater than or equal to 1"));
        }
    }
}
