//! The life of one instance on this cell: claim, image, network, container, health, RUNNING
//! with routes, then watch it until it exits or is stopped — and release everything after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::DynBus;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use wire::envelope::{Envelope, LogStream};
use wire::lrp::{DesiredLrp, InstanceKey, InstanceReport, LrpStart, PortMapping};
use wire::routing::{RegistryMessage, RouteOptions};

use crate::container::{self, ContainerPlan};
use crate::disk;
use crate::executor::Shared;
use crate::health;
use crate::net::APP_PORT;

/// Longest log line before it is split (Diego splits around 60 KiB).
const MAX_LINE: usize = 60 * 1024;

/// Health checks while an instance starts: the first after this, then each wait a quarter
/// longer up to [`START_POLL_MAX`] (Diego polls every 2 s; an app that listens after 150 ms
/// is found healthy within about 40 ms here).
const START_POLL_FIRST: Duration = Duration::from_millis(10);
const START_POLL_MAX: Duration = Duration::from_millis(200);

/// What ended an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Stopped,
    Crashed { reason: String, exit_status: Option<i32> },
}

pub struct Instance {
    pub shared: Arc<Shared>,
    pub start: LrpStart,
    pub stop: kit::Shutdown,
}

fn process_type(d: &DesiredLrp) -> String {
    d.metric_tags.get("process_type").cloned().unwrap_or_else(|| "web".into())
}

impl Instance {
    fn key(&self) -> InstanceKey {
        InstanceKey {
            process_guid: self.start.desired.process_guid.clone(),
            index: self.start.index,
            instance_guid: self.start.instance_guid.clone(),
        }
    }

    fn report(&self) -> InstanceReport {
        InstanceReport::new(self.key(), self.shared.cell_id.clone())
    }

    /// A `CELL/<index>` line in the app's stream.
    async fn cell_log(&self, line: &str) {
        let d = &self.start.desired;
        let env =
            Envelope::log(&d.log_guid, self.start.index.to_string(), "CELL", line, LogStream::Out);
        publish(&self.shared.bus, &env).await;
    }

    /// Run to the end; every resource is released before this returns.
    pub async fn run(self) {
        let key = self.key();
        if let Err(e) = self.shared.reporter.report("claim", &self.report()).await {
            tracing::warn!(process_guid = %key.process_guid, instance = key.index, error = %e, "claim refused");
            return;
        }
        let short = container::short_id(&self.start.instance_guid);
        let mut plan: Option<ContainerPlan> = None;
        let mut attachment = None;
        let end = self.live(&short, &mut plan, &mut attachment).await;
        if attachment.is_some() {
            self.shared.emitter.unregister(&self.start.instance_guid).await;
        }
        if let Some(p) = &plan {
            container::destroy(self.shared.os.as_ref(), p).await;
            self.shared.forget(p);
        }
        if let Some(a) = &attachment {
            self.shared.net.detach(a).await;
        }
        let mut r = self.report();
        let kind = match &end {
            End::Stopped => "remove",
            End::Crashed { reason, exit_status } => {
                self.cell_log(reason).await;
                r.crash_reason = Some(reason.clone());
                r.exit_status = *exit_status;
                "crash"
            }
        };
        if let Err(e) = self.shared.reporter.report(kind, &r).await {
            tracing::warn!(process_guid = %key.process_guid, instance = key.index, error = %e, "report failed");
        }
    }

    async fn live(
        &self,
        short: &str,
        plan_out: &mut Option<ContainerPlan>,
        att_out: &mut Option<crate::net::Attachment>,
    ) -> End {
        let d = &self.start.desired;
        let crash = |reason: String| End::Crashed { reason, exit_status: None };
        let mut steps = Steps::new();
        self.cell_log(&format!("Creating container for app instance {}", self.start.instance_guid))
            .await;
        let layer =
            match self.shared.images.layer(&d.image.droplet_url, &d.image.droplet_sha256).await {
                Ok(l) => l,
                Err(e) => return crash(format!("Failed to create container: {e}")),
            };
        steps.done("image");
        let att = match self.shared.net.attach(short).await {
            Ok(a) => a,
            Err(e) => return crash(format!("Failed to create container: {e}")),
        };
        steps.done("network");
        let id = container::container_id(&self.start.instance_guid);
        let plan = ContainerPlan {
            id,
            dir: self.shared.instances_dir.join(short),
            droplet_layer: layer,
            stack_rootfs: self.shared.stack_rootfs.clone(),
            netns_path: att.netns_path(),
            address: att.ip,
            env: self.env(&att),
            start_command: d.start_command.clone(),
            memory_mb: d.memory_mb,
            pids: if d.max_pids > 0 { i64::from(d.max_pids) } else { 1024 },
            ca_file: self.shared.ca_file.clone(),
        };
        *att_out = Some(att.clone());
        *plan_out = Some(plan.clone());
        if let Err(e) = container::prepare(self.shared.os.as_ref(), &plan).await {
            return crash(format!("Failed to create container: {e}"));
        }
        steps.done("rootfs");
        let mut child = match container::run(&plan) {
            Ok(c) => c,
            Err(e) => return crash(format!("Failed to create container: {e}")),
        };
        self.cell_log("Successfully created container").await;
        self.pump(child.stdout.take(), LogStream::Out);
        self.pump(child.stderr.take(), LogStream::Err);
        self.watch(&plan, &att, &mut child, steps).await
    }

    fn env(&self, att: &crate::net::Attachment) -> Vec<String> {
        let d = &self.start.desired;
        let ext = &self.shared.external_ip;
        let mut env: BTreeMap<String, String> = d.env.clone();
        let mut vcap: serde_json::Value = env
            .get("VCAP_APPLICATION")
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(o) = vcap.as_object_mut() {
            o.insert("instance_id".into(), self.start.instance_guid.clone().into());
            o.insert("instance_index".into(), self.start.index.into());
            o.insert("host".into(), "0.0.0.0".into());
            o.insert("port".into(), APP_PORT.into());
        }
        let index = self.start.index.to_string();
        let ports = format!("[{{\"external\":{},\"internal\":{APP_PORT}}}]", att.host_port);
        for (k, v) in [
            ("PORT", APP_PORT.to_string()),
            ("VCAP_APP_PORT", APP_PORT.to_string()),
            ("VCAP_APP_HOST", "0.0.0.0".into()),
            ("VCAP_APPLICATION", vcap.to_string()),
            ("CF_INSTANCE_INDEX", index.clone()),
            ("INSTANCE_INDEX", index),
            ("CF_INSTANCE_GUID", self.start.instance_guid.clone()),
            ("INSTANCE_GUID", self.start.instance_guid.clone()),
            ("CF_INSTANCE_IP", ext.clone()),
            ("CF_INSTANCE_INTERNAL_IP", att.ip.to_string()),
            ("CF_INSTANCE_PORT", att.host_port.to_string()),
            ("CF_INSTANCE_ADDR", format!("{ext}:{}", att.host_port)),
            ("CF_INSTANCE_PORTS", ports),
            ("MEMORY_LIMIT", format!("{}m", d.memory_mb)),
            ("HOME", "/home/vcap/app".into()),
            ("TMPDIR", "/home/vcap/tmp".into()),
            ("DEPS_DIR", "/home/vcap/deps".into()),
            ("USER", "vcap".into()),
            ("LANG", "C.UTF-8".into()),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ] {
            env.entry(k.to_owned()).or_insert(v);
        }
        // The platform's own values win over user-provided ones for these.
        for k in
            ["PORT", "CF_INSTANCE_GUID", "CF_INSTANCE_INDEX", "INSTANCE_INDEX", "INSTANCE_GUID"]
        {
            env.remove(k);
        }
        env.insert("PORT".into(), APP_PORT.to_string());
        env.insert("CF_INSTANCE_GUID".into(), self.start.instance_guid.clone());
        env.insert("INSTANCE_GUID".into(), self.start.instance_guid.clone());
        env.insert("CF_INSTANCE_INDEX".into(), self.start.index.to_string());
        env.insert("INSTANCE_INDEX".into(), self.start.index.to_string());
        env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// App output → `APP/PROC/<TYPE>` envelopes, long lines split.
    fn pump<R: AsyncRead + Unpin + Send + 'static>(&self, src: Option<R>, stream: LogStream) {
        let Some(src) = src else { return };
        let d = &self.start.desired;
        let (bus, source) = (self.shared.bus.clone(), d.log_guid.clone());
        let source_type = format!("APP/PROC/{}", process_type(d).to_ascii_uppercase());
        let index = self.start.index.to_string();
        let tags = d.metric_tags.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(src);
            let mut buf = Vec::new();
            while let Ok(n) = reader.read_until(b'\n', &mut buf).await {
                if n == 0 {
                    break;
                }
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                for chunk in line.chunks(MAX_LINE) {
                    let mut env = Envelope::log(&source, &index, &source_type, chunk, stream);
                    for (k, v) in &tags {
                        env.tags.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    publish(&bus, &env).await;
                }
                buf.clear();
            }
        });
    }

    /// Health-check to RUNNING, then watch until exit, stop, a failed check or the disk quota.
    async fn watch(
        &self,
        plan: &ContainerPlan,
        att: &crate::net::Attachment,
        child: &mut tokio::process::Child,
        mut steps: Steps,
    ) -> End {
        let d = &self.start.desired;
        let ip = att.ip.to_string();
        let mut disk = DiskWatch::new(self.shared.disk_interval, d.disk_mb);
        if let Some(end) = self.until_healthy(plan, &ip, child, &mut disk).await {
            return end;
        }
        steps.done("healthy");
        tracing::info!(process_guid = %d.process_guid, instance = self.start.index, steps = %steps, "instance healthy");
        self.cell_log("Container became healthy").await;
        let mut r = self.report();
        r.address = self.shared.external_ip.clone();
        r.instance_address = ip.clone();
        r.ports = vec![PortMapping { container_port: APP_PORT, host_port: att.host_port }];
        if let Err(e) = self.shared.reporter.report("start", &r).await {
            tracing::warn!(error = %e, "start report failed");
        }
        self.shared.emitter.register(&self.start.instance_guid, self.routes(att.host_port)).await;
        let interval = Duration::from_secs(d.health_check.interval_secs.max(1));
        let mut liveness =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut metrics = tokio::time::interval(self.shared.metrics_interval);
        loop {
            tokio::select! {
                status = child.wait() => return self.exited(plan, status.ok().and_then(|s| s.code())),
                () = self.stop.cancelled() => return self.stop_container(plan, child).await,
                _ = liveness.tick() => {
                    if !health::check(&d.health_check, &ip, APP_PORT).await {
                        let _ = self.stop_container(plan, child).await;
                        return End::Crashed { reason: "Instance became unhealthy: health check failed".into(), exit_status: None };
                    }
                }
                _ = metrics.tick() => {
                    let over = disk.measure(plan).await;
                    self.emit_metrics(plan, disk.used).await;
                    if let Some(reason) = over {
                        return self.over_quota(plan, child, reason).await;
                    }
                }
                _ = disk.ticks.tick() => {
                    if let Some(reason) = disk.measure(plan).await {
                        return self.over_quota(plan, child, reason).await;
                    }
                }
            }
        }
    }

    /// Poll the health check until it passes (`None`) or the instance ends first.
    async fn until_healthy(
        &self,
        plan: &ContainerPlan,
        ip: &str,
        child: &mut tokio::process::Child,
        disk: &mut DiskWatch,
    ) -> Option<End> {
        let d = &self.start.desired;
        let started = Instant::now();
        let start_timeout = Duration::from_secs(d.health_check.start_timeout_secs.max(1));
        let mut poll = START_POLL_FIRST;
        loop {
            let next = tokio::time::sleep(poll);
            tokio::pin!(next);
            loop {
                tokio::select! {
                    status = child.wait() => return Some(self.exited(plan, status.ok().and_then(|s| s.code()))),
                    () = self.stop.cancelled() => return Some(self.stop_container(plan, child).await),
                    _ = disk.ticks.tick() => {
                        if let Some(reason) = disk.measure(plan).await {
                            return Some(self.over_quota(plan, child, reason).await);
                        }
                    }
                    () = &mut next => break,
                }
            }
            poll = (poll * 5 / 4).min(START_POLL_MAX);
            if container::started(plan) && health::check(&d.health_check, ip, APP_PORT).await {
                return None;
            }
            if started.elapsed() >= start_timeout {
                let _ = self.stop_container(plan, child).await;
                return Some(End::Crashed {
                    reason: health::start_timeout_message(d.health_check.start_timeout_secs),
                    exit_status: None,
                });
            }
        }
    }

    /// Stop an instance that went over its disk quota; it crashed with that reason.
    async fn over_quota(
        &self,
        plan: &ContainerPlan,
        child: &mut tokio::process::Child,
        reason: String,
    ) -> End {
        let d = &self.start.desired;
        tracing::warn!(process_guid = %d.process_guid, instance = self.start.index, %reason, "stopping an instance over its disk quota");
        let _ = self.stop_container(plan, child).await;
        End::Crashed { reason, exit_status: None }
    }

    fn exited(&self, plan: &ContainerPlan, code: Option<i32>) -> End {
        let oom = container::oom_kills(plan) > 0;
        let code_text = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
        let reason = if oom {
            format!("APP/PROC/WEB: Exited with status {code_text} (out of memory)")
        } else {
            format!("APP/PROC/WEB: Exited with status {code_text}")
        };
        End::Crashed { reason, exit_status: code }
    }

    async fn stop_container(&self, plan: &ContainerPlan, child: &mut tokio::process::Child) -> End {
        self.shared.emitter.unregister(&self.start.instance_guid).await;
        self.cell_log(&format!("Stopping instance {}", self.start.instance_guid)).await;
        if !self.signal_until_exit(plan, child, "TERM", self.shared.grace).await {
            self.signal_until_exit(plan, child, "KILL", Duration::from_secs(5)).await;
        }
        self.cell_log("Destroying container").await;
        End::Stopped
    }

    /// Send `signal` to every process of the container — again while runc refuses it (a
    /// container still being created takes no signals) — until the container exits or `within`
    /// passes; whether it exited.
    async fn signal_until_exit(
        &self,
        plan: &ContainerPlan,
        child: &mut tokio::process::Child,
        signal: &str,
        within: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut sent = false;
        loop {
            if !sent {
                sent = container::signal(self.shared.os.as_ref(), &plan.id, signal).await.is_ok();
            }
            tokio::select! {
                _ = child.wait() => return true,
                () = tokio::time::sleep_until(deadline) => return false,
                () = tokio::time::sleep(Duration::from_millis(50)), if !sent => {}
            }
        }
    }

    fn routes(&self, host_port: u16) -> Vec<RegistryMessage> {
        let d = &self.start.desired;
        d.routes
            .iter()
            .map(|r| RegistryMessage {
                host: self.shared.external_ip.clone(),
                port: host_port,
                uris: vec![r.uri.clone()],
                app: d.log_guid.clone(),
                private_instance_id: self.start.instance_guid.clone(),
                private_instance_index: self.start.index.to_string(),
                protocol: r.protocol.clone(),
                stale_threshold_in_seconds: Some(wire::routing::DEFAULT_PRUNE_THRESHOLD_SECS),
                tags: [("component".to_owned(), "cell".to_owned())].into_iter().collect(),
                options: r.loadbalancing.clone().map(|lb| RouteOptions { loadbalancing: Some(lb) }),
                ..Default::default()
            })
            .collect()
    }

    async fn emit_metrics(&self, plan: &ContainerPlan, disk: u64) {
        let d = &self.start.desired;
        let cg = plan.memory_cgroup();
        let read = |f: &str| {
            std::fs::read_to_string(cg.join(f)).ok().and_then(|s| s.trim().parse::<f64>().ok())
        };
        let memory = read("memory.usage_in_bytes").unwrap_or(0.0);
        let gauge =
            |unit: &str, value: f64| wire::envelope::GaugeValue { unit: unit.into(), value };
        let metrics = [
            ("memory".to_owned(), gauge("bytes", memory)),
            ("disk".to_owned(), gauge("bytes", disk as f64)),
            ("memory_quota".to_owned(), gauge("bytes", (d.memory_mb << 20) as f64)),
            ("disk_quota".to_owned(), gauge("bytes", (d.disk_mb << 20) as f64)),
            ("cpu".to_owned(), gauge("percentage", self.shared.cpu_percent(plan))),
        ];
        let env = Envelope::gauge(&d.log_guid, self.start.index.to_string(), metrics);
        publish(&self.shared.bus, &env).await;
    }
}

/// How long each step of a start took (for the log line of a healthy instance).
struct Steps {
    last: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Steps {
    fn new() -> Self {
        Self { last: Instant::now(), done: Vec::new() }
    }

    fn done(&mut self, step: &'static str) {
        self.done.push((step, self.last.elapsed()));
        self.last = Instant::now();
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (step, took)) in self.done.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{step}={}ms", took.as_millis())?;
        }
        Ok(())
    }
}

/// The disk use of an instance's writable layer, measured every interval, against its quota.
struct DiskWatch {
    ticks: tokio::time::Interval,
    quota_mb: u64,
    used: u64,
}

impl DiskWatch {
    fn new(every: Duration, quota_mb: u64) -> Self {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { ticks, quota_mb, used: 0 }
    }

    /// Measure now; the crash reason when over the quota (a quota of 0 is none).
    async fn measure(&mut self, plan: &ContainerPlan) -> Option<String> {
        self.used = disk::usage(plan.upper()).await;
        disk::over_quota(self.used, self.quota_mb)
    }
}

async fn publish(bus: &DynBus, env: &Envelope) {
    if let Ok(body) = serde_json::to_vec(env) {
        let _ = bus.publish(&env.subject(), body.into()).await;
    }
}
