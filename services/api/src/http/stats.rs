//! Process stats (docs/api.md): one entry per desired instance index, from the
//! scheduler's actual instances, with usage from the cells' container metrics in the logs
//! service when it has them.

use wire::lrp::{ActualLrp, ActualState, Presence};
use wire::v3::process::{InstancePort, ProcessStats};
use wire::v3::InstanceState;

use crate::store::apps::App;
use crate::store::processes::Process;
use crate::AppState;

fn state(a: Option<&ActualLrp>) -> InstanceState {
    match a.map(|a| a.state) {
        None => InstanceState::Down,
        Some(ActualState::Unclaimed | ActualState::Claimed) => InstanceState::Starting,
        Some(ActualState::Running) => InstanceState::Running,
        Some(ActualState::Crashed) => InstanceState::Crashed,
    }
}

/// The instance shown for an index: the ordinary one, else an evacuating or suspect copy.
fn pick(actual: &[ActualLrp], index: u32) -> Option<&ActualLrp> {
    let at: Vec<&ActualLrp> = actual.iter().filter(|a| a.index == index).collect();
    at.iter().find(|a| a.presence == Presence::Ordinary).or_else(|| at.first()).copied()
}

/// Megabytes as bytes.
fn bytes(mb: i64) -> Option<u64> {
    u64::try_from(mb * 1024 * 1024).ok()
}

pub async fn entries(
    s: &AppState,
    p: &Process,
    app: &App,
    actual: &[ActualLrp],
) -> Vec<ProcessStats> {
    let usage = crate::http::usage::latest(s, &app.guid).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    let count = u32::try_from(p.instances).unwrap_or(0);
    (0..count)
        .map(|i| {
            let a = pick(actual, i);
            let st = state(a);
            let running = st == InstanceState::Running;
            let uptime = match a {
                Some(a) if running => (now - a.since).max(0) / 1_000_000_000,
                _ => 0,
            };
            let ports = a
                .map(|a| {
                    a.ports
                        .iter()
                        .map(|m| InstancePort {
                            external: m.host_port,
                            internal: m.container_port,
                            external_tls_proxy_port: None,
                            internal_tls_proxy_port: None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let details = a.and_then(|a| {
                if !a.placement_error.is_empty() {
                    Some(a.placement_error.clone())
                } else if st == InstanceState::Crashed && !a.crash_reason.is_empty() {
                    Some(a.crash_reason.clone())
                } else {
                    None
                }
            });
            ProcessStats {
                kind: p.kind.clone(),
                index: i64::from(i),
                instance_guid: a.map(|a| a.instance_guid.clone()).unwrap_or_default(),
                state: st,
                routable: a.is_some_and(|a| a.routable && running),
                usage: usage.get(&i.to_string()).cloned().unwrap_or_default(),
                host: a.map(|a| a.address.clone()).unwrap_or_default(),
                instance_internal_ip: a.map(|a| a.instance_address.clone()).unwrap_or_default(),
                instance_ports: ports,
                uptime,
                mem_quota: bytes(p.memory_mb),
                disk_quota: bytes(p.disk_mb),
                log_rate_limit: Some(p.log_rate),
                fds_quota: Some(16384),
                isolation_segment: None,
                details,
            }
        })
        .collect()
}
