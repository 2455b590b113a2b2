//! How this cell runs instances: in runc containers ([`runc`], isolated, needs
//! root) or as plain processes ([`process`], for development where runc cannot be
//! used). An instance lives the same life on both (`instance.rs`); what differs is here: its
//! network (a namespace and mapped port, or a free host port), its root, its child, how it is
//! signalled, its memory, CPU and disk, and how it is released.

use std::path::{Path, PathBuf};

use ::container::{HostError, Signal};

pub mod process;
pub mod runc;

use crate::env::Place;
use process::{ProcessSandbox, Processes};
use runc::{ContainerError, Runc, RuncSandbox};

/// This cell's backend.
pub enum Backend {
    Runc(Runc),
    Process(Processes),
}

/// What an instance is made of, the same on both backends.
#[derive(Debug, Clone)]
pub struct Launch {
    pub instance_guid: String,
    /// The droplet's extracted layer (`<layers>/<sha256>`, holding `home/vcap`).
    pub layer: PathBuf,
    /// The stack the droplet was staged on, which the instance runs on.
    pub stack: String,
    pub start_command: String,
    pub memory_mb: u64,
    /// 0: the default (1024).
    pub max_pids: u32,
    /// A docker image to run instead of the droplet on its stack.
    pub docker: Option<DockerRun>,
}

/// What an instance of a docker image runs: the image's unpacked root, its process (or the
/// process's own command through `/bin/sh -c`), user, working directory and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRun {
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("instance directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("no free host port in {0}-{1}")]
    NoPort(u16, u16),
    #[error("{0}")]
    Unsupported(&'static str),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Runc(_) => "runc",
            Self::Process(_) => "process",
        }
    }

    /// At the cell's start: what the backend needs set up, and whatever a crashed run of this
    /// cell left under `instances` removed.
    pub async fn start(&self, instances: &Path) -> Result<(), SandboxError> {
        match self {
            Self::Runc(r) => r.start(instances).await?,
            Self::Process(p) => p.sweep(instances).await,
        }
        Ok(())
    }

    /// The network step of an instance whose directory is `dir` (named `short`), its app
    /// listening on `app_port` in a container.
    pub async fn place(
        &self,
        dir: PathBuf,
        short: &str,
        app_port: u16,
    ) -> Result<Sandbox, SandboxError> {
        Ok(match self {
            Self::Runc(r) => Sandbox::Runc(Box::new(r.place(dir, short, app_port).await?)),
            Self::Process(p) => Sandbox::Process(p.place(dir)?),
        })
    }
}

/// One instance as its backend made it: placed, then prepared and spawned; [`Sandbox::release`]
/// undoes whatever of that happened.
pub enum Sandbox {
    Runc(Box<RuncSandbox>),
    Process(ProcessSandbox),
}

impl Sandbox {
    /// The host port routers reach the app on.
    pub fn host_port(&self) -> u16 {
        match self {
            Self::Runc(s) => s.att.host_port,
            Self::Process(s) => s.port,
        }
    }

    /// Where the cell reaches the app itself (health checks): the container's address and
    /// port 8080, or loopback and the host port.
    pub fn app_addr(&self) -> (String, u16) {
        match self {
            Self::Runc(s) => (s.att.ip.to_string(), s.att.app_port),
            Self::Process(s) => ("127.0.0.1".into(), s.port),
        }
    }

    /// Where the app runs, as its environment tells it.
    pub fn env_place(&self) -> Place {
        match self {
            Self::Runc(s) => Place {
                app_port: s.att.app_port,
                ..Place::container(s.att.ip.to_string(), s.att.host_port)
            },
            Self::Process(s) => Place {
                app_port: s.port,
                host_port: s.port,
                internal_ip: "127.0.0.1".into(),
                vcap_root: s.vcap_root().display().to_string(),
                path: s.host_path().to_owned(),
            },
        }
    }

    /// The root the app runs in, with the environment `env`.
    pub async fn prepare(&mut self, launch: &Launch, env: Vec<String>) -> Result<(), SandboxError> {
        match self {
            Self::Runc(s) => Ok(s.prepare(launch, env).await?),
            Self::Process(_) if launch.docker.is_some() => Err(SandboxError::Unsupported(
                "docker images run only on cells with the runc backend",
            )),
            Self::Process(s) => s.prepare(launch, env).await,
        }
    }

    /// The child whose exit status is the app's and whose stdout/stderr are its output.
    pub fn spawn(&mut self) -> Result<tokio::process::Child, SandboxError> {
        match self {
            Self::Runc(s) => Ok(s.spawn()?),
            Self::Process(s) => s.spawn(),
        }
    }

    /// The app's exit status from its child's: runc reports the container's own (137 for a
    /// SIGKILL); a plain process killed by a signal is reported as a shell would (128 + N).
    pub fn exit_code(&self, status: std::process::ExitStatus) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt as _;
        match self {
            Self::Runc(_) => status.code(),
            Self::Process(_) => status.code().or_else(|| status.signal().map(|n| 128 + n)),
        }
    }

    /// Whether the app's process runs (health checks start then).
    pub fn started(&self) -> bool {
        match self {
            Self::Runc(s) => s.started(),
            Self::Process(s) => s.started(),
        }
    }

    /// Send `signal` to every process of the instance; whether it was sent.
    pub async fn signal(&self, signal: Signal) -> bool {
        match self {
            Self::Runc(s) => s.signal(signal).await,
            Self::Process(s) => s.signal(signal).await,
        }
    }

    /// Kill the app when it is over its memory; whether it did. In a container the kernel
    /// does this itself (the cgroup limit), so only the process backend ever does.
    pub async fn enforce_memory(&self) -> bool {
        match self {
            Self::Runc(_) => false,
            Self::Process(s) => s.enforce_memory().await,
        }
    }

    /// Whether the app was killed for its memory.
    pub fn out_of_memory(&self) -> bool {
        match self {
            Self::Runc(s) => s.out_of_memory(),
            Self::Process(s) => s.out_of_memory(),
        }
    }

    /// Memory in use, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        match self {
            Self::Runc(s) => s.memory_bytes(),
            Self::Process(s) => s.memory_bytes(),
        }
    }

    /// CPU time used so far, in nanoseconds.
    pub fn cpu_ns(&self) -> Option<u64> {
        match self {
            Self::Runc(s) => s.cpu_ns(),
            Self::Process(s) => s.cpu_ns(),
        }
    }

    /// The directory whose size is the instance's disk use.
    pub fn disk_dir(&self) -> PathBuf {
        match self {
            Self::Runc(s) => s.dir.join("upper"),
            Self::Process(s) => s.dir.clone(),
        }
    }

    /// Where an SSH session of this instance runs its commands and opens its connections.
    pub fn exec_target(&self) -> Option<crate::exec::Target> {
        match self {
            Self::Runc(s) => s.plan.as_ref().map(|p| crate::exec::Target::Runc {
                container_id: p.id.clone(),
                ip: s.att.ip.to_string(),
            }),
            Self::Process(s) => s.exec_target(),
        }
    }

    /// Release everything: processes, mounts, network, directory.
    pub async fn release(self) {
        match self {
            Self::Runc(s) => s.release().await,
            Self::Process(s) => s.release().await,
        }
    }
}
