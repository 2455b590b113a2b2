//! What every instance on this cell shares: its backend, droplet images, route emitter,
//! reporter, bus, timings and the CPU samples behind its metrics. Depends on no instance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus::DynBus;

use crate::backend::Backend;
use crate::emitter::Emitter;
use crate::image::Images;
use crate::report::Reporter;

/// What every instance on this cell uses.
pub struct Shared {
    pub cell_id: String,
    pub external_ip: String,
    /// The cell's availability zone, named in its route registrations.
    pub zone: String,
    pub backend: Backend,
    pub images: Images,
    /// Docker images: layers pulled, cached and unpacked.
    pub docker: crate::docker::DockerImages,
    pub emitter: Emitter,
    pub reporter: Arc<dyn Reporter>,
    pub bus: DynBus,
    pub instances_dir: PathBuf,
    pub grace: Duration,
    /// Between unregistering a stopping instance's routes and signalling it.
    pub route_drain: Duration,
    pub metrics_interval: Duration,
    pub disk_interval: Duration,
    cpu: Mutex<HashMap<String, (u64, Instant)>>,
    /// Where SSH sessions of each running instance go, by instance guid.
    exec: Mutex<HashMap<String, crate::exec::Target>>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cell_id: String,
        external_ip: String,
        backend: Backend,
        images: Images,
        emitter: Emitter,
        reporter: Arc<dyn Reporter>,
        bus: DynBus,
        instances_dir: PathBuf,
    ) -> Self {
        Self {
            cell_id,
            external_ip,
            zone: String::new(),
            backend,
            images,
            docker: crate::docker::DockerImages::new(
                instances_dir.with_file_name("oci"),
                Vec::new(),
                Duration::from_secs(3600),
            ),
            emitter,
            reporter,
            bus,
            instances_dir,
            grace: Duration::from_secs(10),
            route_drain: Duration::from_secs(1),
            metrics_interval: Duration::from_secs(15),
            disk_interval: Duration::from_secs(5),
            cpu: Mutex::new(HashMap::new()),
            exec: Mutex::new(HashMap::new()),
        }
    }

    /// Drop what the cell remembers about an instance that is gone.
    pub fn forget(&self, instance_guid: &str) {
        self.cpu.lock().unwrap_or_else(|e| e.into_inner()).remove(instance_guid);
        self.exec.lock().unwrap_or_else(|e| e.into_inner()).remove(instance_guid);
    }

    /// An instance's app runs: SSH sessions may enter it.
    pub fn enterable(&self, instance_guid: &str, target: crate::exec::Target) {
        self.exec
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(instance_guid.to_owned(), target);
    }

    /// Where an SSH session of a running instance goes.
    pub fn exec_target(&self, instance_guid: &str) -> Option<crate::exec::Target> {
        self.exec.lock().unwrap_or_else(|e| e.into_inner()).get(instance_guid).cloned()
    }

    /// CPU use of an instance since its last sample, in percent of one core, from its CPU
    /// time so far (`now_ns`).
    pub fn cpu_percent(&self, instance_guid: &str, now_ns: Option<u64>) -> f64 {
        let Some(now_ns) = now_ns else { return 0.0 };
        let mut cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
        let prev = cpu.insert(instance_guid.to_owned(), (now_ns, Instant::now()));
        match prev {
            Some((ns, at)) if at.elapsed().as_nanos() > 0 => {
                100.0 * now_ns.saturating_sub(ns) as f64 / at.elapsed().as_nanos() as f64
            }
            _ => 0.0,
        }
    }
}
