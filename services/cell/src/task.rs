//! One task on this cell: the droplet (or a docker droplet's image) in a container (or a
//! process, as instances) running the task's command once with the app's environment, its output as `APP/TASK/<name>` logs, no
//! health check, no routes, never restarted. How it ended goes to the scheduler; a cancel stops
//! it as an instance is stopped (SIGTERM, grace, SIGKILL).

use std::sync::Arc;

use ::container::Signal;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use wire::envelope::{Envelope, LogStream};
use wire::lrp::LrpStart;
use wire::task::{TaskCompletion, TaskDefinition};

use crate::backend::{runc, Launch, Sandbox};
use crate::shared::Shared;

pub struct TaskRun {
    pub shared: Arc<Shared>,
    pub def: TaskDefinition,
    pub stop: kit::Shutdown,
}

impl TaskRun {
    fn source_type(&self) -> String {
        format!("APP/TASK/{}", self.def.name)
    }

    async fn log(&self, line: &str, stream: LogStream) {
        let env = Envelope::log(&self.def.log_guid, "0", self.source_type(), line, stream);
        crate::instance::publish(&self.shared.bus, &env).await;
    }

    /// Run to the end, release everything, report.
    pub async fn run(self) {
        let guid = self.def.task_guid.clone();
        let short = runc::short_id(&guid);
        let mut sandbox = None;
        let mut held = None;
        let failure = self.live(&short, &mut sandbox, &mut held).await;
        if let Some(sb) = sandbox {
            sb.release().await;
        }
        if let Some(h) = held {
            self.shared.docker.release(h).await;
        }
        let done = TaskCompletion {
            task_guid: guid.clone(),
            failed: failure.is_some(),
            failure_reason: failure.clone().unwrap_or_default(),
            cell_id: self.shared.cell_id.clone(),
        };
        match &failure {
            None => self.log("Exit status 0", LogStream::Out).await,
            Some(reason) => self.log(reason, LogStream::Err).await,
        }
        for attempt in 0..5u32 {
            match self.shared.reporter.task_completed(&done).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(task = %guid, attempt, error = %e, "task report failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
                }
            }
        }
    }

    /// The task's run; `Some(reason)` when it failed.
    async fn live(
        &self,
        short: &str,
        sandbox: &mut Option<Sandbox>,
        held: &mut Option<crate::docker::Held>,
    ) -> Option<String> {
        let d = &self.def;
        let (layer, docker) = match &d.image.docker {
            // The image's root, the task's command through `/bin/sh -c`.
            Some(image) => match self.shared.docker.prepare(image, &d.command).await {
                Ok((run, h)) => {
                    *held = Some(h);
                    (run.rootfs.clone(), Some(run))
                }
                Err(e) => return Some(format!("Failed to create container: {e}")),
            },
            None => {
                match self.shared.images.layer(&d.image.droplet_url, &d.image.droplet_sha256).await
                {
                    Ok(l) => (l, None),
                    Err(e) => return Some(format!("Failed to create container: {e}")),
                }
            }
        };
        let dir = self.shared.instances_dir.join(short);
        let sb = match self.shared.backend.place(dir, short, crate::net::APP_PORT).await {
            Ok(sb) => sandbox.insert(sb),
            Err(e) => return Some(format!("Failed to create container: {e}")),
        };
        let start = LrpStart { desired: d.as_lrp(), index: 0, instance_guid: d.task_guid.clone() };
        let mut env = crate::env::app_env(&start, &self.shared.external_ip, &sb.env_place());
        if let Some(image) = &d.image.docker {
            env = crate::env::with_image_env(env, &image.config.env);
        }
        let launch = Launch {
            instance_guid: d.task_guid.clone(),
            layer,
            start_command: d.command.clone(),
            memory_mb: d.memory_mb,
            max_pids: 1024,
            stack: d.stack.clone(),
            docker,
        };
        if let Err(e) = sb.prepare(&launch, env).await {
            return Some(format!("Failed to create container: {e}"));
        }
        let mut child = match sb.spawn() {
            Ok(c) => c,
            Err(e) => return Some(format!("Failed to create container: {e}")),
        };
        let outs = [
            self.pump(child.stdout.take(), LogStream::Out),
            self.pump(child.stderr.take(), LogStream::Err),
        ];
        let status = tokio::select! {
            s = child.wait() => s,
            () = self.stop.cancelled() => {
                let _ = sb.signal(Signal::Term).await;
                let grace = tokio::time::sleep(self.shared.grace);
                tokio::select! {
                    _ = child.wait() => {}
                    () = grace => { let _ = sb.signal(Signal::Kill).await; let _ = child.wait().await; }
                }
                for o in outs.into_iter().flatten() {
                    let _ = o.await;
                }
                return Some("task was cancelled".into());
            }
        };
        // Every line is out before the end is told.
        for o in outs.into_iter().flatten() {
            let _ = o.await;
        }
        let code = status.as_ref().ok().and_then(|s| sb.exit_code(*s));
        match code {
            Some(0) => None,
            Some(c) if sb.out_of_memory() => {
                Some(format!("{}: Exited with status {c} (out of memory)", self.source_type()))
            }
            Some(c) => Some(format!("{}: Exited with status {c}", self.source_type())),
            None => Some(format!("{}: Exited with an unknown status", self.source_type())),
        }
    }

    /// Output → `APP/TASK/<name>` envelopes.
    fn pump<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        src: Option<R>,
        stream: LogStream,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let src = src?;
        let (bus, source, kind) =
            (self.shared.bus.clone(), self.def.log_guid.clone(), self.source_type());
        let tags = self.def.metric_tags.clone();
        Some(tokio::spawn(async move {
            let mut lines = BufReader::new(src).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut env = Envelope::log(&source, "0", &kind, line.as_bytes(), stream);
                for (k, v) in &tags {
                    env.tags.entry(k.clone()).or_insert_with(|| v.clone());
                }
                crate::instance::publish(&bus, &env).await;
            }
        }))
    }
}
