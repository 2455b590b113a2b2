//! Process stats (docs/api.md): one entry per desired instance index, from the
//! scheduler's actual instances, with usage from the cells' container metrics in the logs
//! service when it has them.

use serde_json::{json, Value};
use wire::lrp::{ActualLrp, ActualState, Presence};

use crate::store::apps::App;
use crate::store::processes::Process;
use crate::AppState;

fn state(a: Option<&ActualLrp>) -> &'static str {
    match a.map(|a| a.state) {
        None => "DOWN",
        Some(ActualState::Unclaimed | ActualState::Claimed) => "STARTING",
        Some(ActualState::Running) => "RUNNING",
        Some(ActualState::Crashed) => "CRASHED",
    }
}

/// The instance shown for an index: the ordinary one, else an evacuating or suspect copy.
fn pick(actual: &[ActualLrp], index: u32) -> Option<&ActualLrp> {
    let at: Vec<&ActualLrp> = actual.iter().filter(|a| a.index == index).collect();
    at.iter().find(|a| a.presence == Presence::Ordinary).or_else(|| at.first()).copied()
}

pub async fn entries(s: &AppState, p: &Process, app: &App, actual: &[ActualLrp]) -> Vec<Value> {
    let usage = crate::http::usage::latest(s, &app.guid).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    let count = u32::try_from(p.instances).unwrap_or(0);
    (0..count)
        .map(|i| {
            let a = pick(actual, i);
            let st = state(a);
            let uptime = match a {
                Some(a) if st == "RUNNING" => (now - a.since).max(0) / 1_000_000_000,
                _ => 0,
            };
            let ports: Vec<Value> = a
                .map(|a| {
                    a.ports
                        .iter()
                        .map(|m| {
                            json!({"external": m.host_port, "internal": m.container_port,
                    "external_tls_proxy_port": null, "internal_tls_proxy_port": null})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let details = a.and_then(|a| {
                if !a.placement_error.is_empty() {
                    Some(a.placement_error.clone())
                } else if st == "CRASHED" && !a.crash_reason.is_empty() {
                    Some(a.crash_reason.clone())
                } else {
                    None
                }
            });
            let u = usage.get(&i.to_string()).cloned().unwrap_or_else(|| json!({}));
            json!({
                "type": p.kind, "index": i,
                "instance_guid": a.map(|a| a.instance_guid.clone()).unwrap_or_default(),
                "state": st, "routable": a.is_some_and(|a| a.routable && st == "RUNNING"),
                "usage": u,
                "host": a.map(|a| a.address.clone()).unwrap_or_default(),
                "instance_internal_ip": a.map(|a| a.instance_address.clone()).unwrap_or_default(),
                "instance_ports": ports,
                "uptime": uptime,
                "mem_quota": p.memory_mb * 1024 * 1024,
                "disk_quota": p.disk_mb * 1024 * 1024,
                "log_rate_limit": p.log_rate,
                "fds_quota": 16384,
                "isolation_segment": null,
                "details": details,
            })
        })
        .collect()
}
