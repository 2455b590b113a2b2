//! The life of one instance on this cell: claim, image, network, container, health, RUNNING
//! with routes, then watch it until it exits or is stopped — and release everything after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::container::Signal;
use bus::DynBus;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use wire::envelope::{Envelope, LogStream};
use wire::lrp::{DesiredLrp, InstanceKey, InstanceReport, LrpStart, PortMapping};
use wire::routing::RegistryMessage;

use crate::backend::{runc, Launch, Sandbox};
use crate::disk;
use crate::env;
use crate::health;
use crate::shared::Shared;

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
        match self.shared.reporter.claim(&self.report()).await {
            Err(e) => {
                tracing::warn!(process_guid = %key.process_guid, instance = key.index, error = %e, "claim refused");
                return;
            }
            // The routes changed after the auction: announce the current ones (unless the
            // scheduler's route update came first).
            Ok(Some(routes)) if routes != self.start.desired.routes => {
                self.shared.emitter.first_routes(&self.start.instance_guid, routes);
            }
            Ok(_) => {}
        }
        let short = runc::short_id(&self.start.instance_guid);
        let mut sandbox: Option<Sandbox> = None;
        let mut held = None;
        let end = self.live(&short, &mut sandbox, &mut held).await;
        if let Some(sb) = sandbox {
            self.shared.forget(&self.start.instance_guid);
            self.shared.emitter.unregister(&self.start.instance_guid).await;
            sb.release().await;
            self.shared.forget(&self.start.instance_guid);
        }
        if let Some(h) = held {
            self.shared.docker.release(h).await;
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
        sandbox: &mut Option<Sandbox>,
        held: &mut Option<crate::docker::Held>,
    ) -> End {
        let d = &self.start.desired;
        let crash = |reason: String| End::Crashed { reason, exit_status: None };
        let mut steps = Steps::new();
        self.cell_log(&format!("Creating container for app instance {}", self.start.instance_guid))
            .await;
        let (layer, docker) = match &d.image.docker {
            Some(image) => match self.shared.docker.prepare(image, &d.start_command).await {
                Ok((run, h)) => {
                    *held = Some(h);
                    (run.rootfs.clone(), Some(run))
                }
                Err(e) => return crash(format!("Failed to create container: {e}")),
            },
            None => {
                match self.shared.images.layer(&d.image.droplet_url, &d.image.droplet_sha256).await
                {
                    Ok(l) => (l, None),
                    Err(e) => return crash(format!("Failed to create container: {e}")),
                }
            }
        };
        steps.done("image");
        let dir = self.shared.instances_dir.join(short);
        let port = d.ports.first().copied().unwrap_or(crate::net::APP_PORT);
        let sb = match self.shared.backend.place(dir, short, port).await {
            Ok(sb) => sandbox.insert(sb),
            Err(e) => return crash(format!("Failed to create container: {e}")),
        };
        steps.done("network");
        let mut env = env::app_env(&self.start, &self.shared.external_ip, &sb.env_place());
        if let Some(image) = &d.image.docker {
            env = env::with_image_env(env, &image.config.env);
        }
        let launch = Launch {
            instance_guid: self.start.instance_guid.clone(),
            layer,
            stack: d.stack.clone(),
            start_command: d.start_command.clone(),
            memory_mb: d.memory_mb,
            max_pids: d.max_pids,
            docker,
        };
        if let Err(e) = sb.prepare(&launch, env).await {
            return crash(format!("Failed to create container: {e}"));
        }
        steps.done("rootfs");
        let mut child = match sb.spawn() {
            Ok(c) => c,
            Err(e) => return crash(format!("Failed to create container: {e}")),
        };
        if let Some(t) = sb.exec_target() {
            self.shared.enterable(&self.start.instance_guid, t);
        }
        self.cell_log("Successfully created container").await;
        self.pump(child.stdout.take(), LogStream::Out);
        self.pump(child.stderr.take(), LogStream::Err);
        self.watch(sb, &mut child, steps).await
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

    /// Health-check to RUNNING, then watch until exit, stop, a failed check or a limit.
    async fn watch(
        &self,
        sb: &Sandbox,
        child: &mut tokio::process::Child,
        mut steps: Steps,
    ) -> End {
        let d = &self.start.desired;
        let (ip, port) = sb.app_addr();
        let mut limits = Limits::new(self.shared.disk_interval, d.disk_mb);
        if let Some(end) = self.until_healthy(sb, child, &mut limits).await {
            return end;
        }
        steps.done("healthy");
        tracing::info!(process_guid = %d.process_guid, instance = self.start.index, backend = self.shared.backend.name(), steps = %steps, "instance healthy");
        self.cell_log("Container became healthy").await;
        let mut r = self.report();
        r.address = self.shared.external_ip.clone();
        r.instance_address = ip.clone();
        r.ports = vec![PortMapping { container_port: port, host_port: sb.host_port() }];
        // Routable before the scheduler hears of it: the scheduler retires an evacuating or
        // suspect copy of this index as soon as this one runs, and the routers must know the
        // replacement before that copy unregisters (else the route is briefly empty: 503).
        let base = self.registration(sb.host_port());
        self.shared.emitter.register(&self.start.instance_guid, base, &d.routes).await;
        if let Err(e) = self.shared.bus.flush().await {
            tracing::warn!(error = %e, "route registration not confirmed by the bus");
        }
        if let Err(e) = self.shared.reporter.report("start", &r).await {
            tracing::warn!(error = %e, "start report failed");
        }
        let interval = Duration::from_secs(d.health_check.interval_secs.max(1));
        let mut liveness =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut metrics = tokio::time::interval(self.shared.metrics_interval);
        loop {
            tokio::select! {
                status = child.wait() => return self.exited(sb, &status),
                () = self.stop.cancelled() => return self.stop_container(sb, child).await,
                _ = liveness.tick() => {
                    if !health::check(&d.health_check, &ip, port).await {
                        let _ = self.stop_container(sb, child).await;
                        return End::Crashed { reason: "Instance became unhealthy: health check failed".into(), exit_status: None };
                    }
                }
                _ = metrics.tick() => {
                    let over = limits.measure(sb).await;
                    self.emit_metrics(sb, limits.disk_used).await;
                    if let Some(over) = over {
                        return self.over_limit(sb, child, over).await;
                    }
                }
                _ = limits.ticks.tick() => {
                    if let Some(over) = limits.measure(sb).await {
                        return self.over_limit(sb, child, over).await;
                    }
                }
            }
        }
    }

    /// Poll the health check until it passes (`None`) or the instance ends first.
    async fn until_healthy(
        &self,
        sb: &Sandbox,
        child: &mut tokio::process::Child,
        limits: &mut Limits,
    ) -> Option<End> {
        let d = &self.start.desired;
        let (ip, port) = sb.app_addr();
        let started = Instant::now();
        let start_timeout = Duration::from_secs(d.health_check.start_timeout_secs.max(1));
        let mut poll = START_POLL_FIRST;
        loop {
            let next = tokio::time::sleep(poll);
            tokio::pin!(next);
            loop {
                tokio::select! {
                    status = child.wait() => return Some(self.exited(sb, &status)),
                    () = self.stop.cancelled() => return Some(self.stop_container(sb, child).await),
                    _ = limits.ticks.tick() => {
                        if let Some(over) = limits.measure(sb).await {
                            return Some(self.over_limit(sb, child, over).await);
                        }
                    }
                    () = &mut next => break,
                }
            }
            poll = (poll * 5 / 4).min(START_POLL_MAX);
            if sb.started() && health::check(&d.health_check, &ip, port).await {
                return None;
            }
            if started.elapsed() >= start_timeout {
                let _ = self.stop_container(sb, child).await;
                return Some(End::Crashed {
                    reason: health::start_timeout_message(d.health_check.start_timeout_secs),
                    exit_status: None,
                });
            }
        }
    }

    /// An instance over a limit: over its disk quota it is stopped and crashed with that
    /// reason; over its memory it was killed already, and its exit is the crash.
    async fn over_limit(&self, sb: &Sandbox, child: &mut tokio::process::Child, over: Over) -> End {
        let d = &self.start.desired;
        match over {
            Over::Disk(reason) => {
                tracing::warn!(process_guid = %d.process_guid, instance = self.start.index, %reason, "stopping an instance over its disk quota");
                let _ = self.stop_container(sb, child).await;
                End::Crashed { reason, exit_status: None }
            }
            Over::Memory => {
                tracing::warn!(process_guid = %d.process_guid, instance = self.start.index, "killed an instance over its memory limit");
                let status = child.wait().await;
                self.exited(sb, &status)
            }
        }
    }

    fn exited(&self, sb: &Sandbox, status: &std::io::Result<std::process::ExitStatus>) -> End {
        let code = status.as_ref().ok().and_then(|s| sb.exit_code(*s));
        let code_text = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
        let reason = if sb.out_of_memory() {
            format!("APP/PROC/WEB: Exited with status {code_text} (out of memory)")
        } else {
            format!("APP/PROC/WEB: Exited with status {code_text}")
        };
        End::Crashed { reason, exit_status: code }
    }

    async fn stop_container(&self, sb: &Sandbox, child: &mut tokio::process::Child) -> End {
        self.shared.emitter.unregister(&self.start.instance_guid).await;
        self.cell_log(&format!("Stopping instance {}", self.start.instance_guid)).await;
        // Routers drop the instance first; requests under way finish (or it exits by itself).
        tokio::select! {
            _ = child.wait() => {}
            () = tokio::time::sleep(self.shared.route_drain) => {}
        }
        if !self.signal_until_exit(sb, child, Signal::Term, self.shared.grace).await {
            self.signal_until_exit(sb, child, Signal::Kill, Duration::from_secs(5)).await;
        }
        self.cell_log("Destroying container").await;
        End::Stopped
    }

    /// Send `signal` to every process of the instance — again while it cannot take one yet
    /// (runc refuses signals to a container still being created) — until the instance exits
    /// or `within` passes; whether it exited.
    async fn signal_until_exit(
        &self,
        sb: &Sandbox,
        child: &mut tokio::process::Child,
        signal: Signal,
        within: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut sent = false;
        loop {
            if !sent {
                sent = sb.signal(signal).await;
            }
            tokio::select! {
                _ = child.wait() => return true,
                () = tokio::time::sleep_until(deadline) => return false,
                () = tokio::time::sleep(Duration::from_millis(50)), if !sent => {}
            }
        }
    }

    /// What every route of this instance is announced with (the emitter adds each route).
    fn registration(&self, host_port: u16) -> RegistryMessage {
        RegistryMessage {
            host: self.shared.external_ip.clone(),
            port: host_port,
            app: self.start.desired.log_guid.clone(),
            private_instance_id: self.start.instance_guid.clone(),
            private_instance_index: self.start.index.to_string(),
            availability_zone: Some(self.shared.zone.clone()).filter(|z| !z.is_empty()),
            stale_threshold_in_seconds: Some(wire::routing::DEFAULT_PRUNE_THRESHOLD_SECS),
            tags: [("component".to_owned(), "cell".to_owned())].into_iter().collect(),
            ..Default::default()
        }
    }

    async fn emit_metrics(&self, sb: &Sandbox, disk: u64) {
        let d = &self.start.desired;
        let gauge =
            |unit: &str, value: f64| wire::envelope::GaugeValue { unit: unit.into(), value };
        let cpu = self.shared.cpu_percent(&self.start.instance_guid, sb.cpu_ns());
        let metrics = [
            ("memory".to_owned(), gauge("bytes", sb.memory_bytes() as f64)),
            ("disk".to_owned(), gauge("bytes", disk as f64)),
            ("memory_quota".to_owned(), gauge("bytes", (d.memory_mb << 20) as f64)),
            ("disk_quota".to_owned(), gauge("bytes", (d.disk_mb << 20) as f64)),
            ("cpu".to_owned(), gauge("percentage", cpu)),
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

/// What an instance may use, measured every interval: its disk (the bytes its backend's
/// directory holds) against its quota, and its memory where no cgroup limits it.
struct Limits {
    ticks: tokio::time::Interval,
    quota_mb: u64,
    disk_used: u64,
}

/// The limit an instance went over.
enum Over {
    /// The crash reason.
    Disk(String),
    /// Killed for it.
    Memory,
}

impl Limits {
    fn new(every: Duration, quota_mb: u64) -> Self {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { ticks, quota_mb, disk_used: 0 }
    }

    /// Measure now (a disk quota of 0 is none).
    async fn measure(&mut self, sb: &Sandbox) -> Option<Over> {
        if sb.enforce_memory().await {
            return Some(Over::Memory);
        }
        self.disk_used = disk::usage(sb.disk_dir()).await;
        disk::over_quota(self.disk_used, self.quota_mb).map(Over::Disk)
    }
}

pub(crate) async fn publish(bus: &DynBus, env: &Envelope) {
    if let Ok(body) = serde_json::to_vec(env) {
        let _ = bus.publish(&env.subject(), body.into()).await;
    }
}
