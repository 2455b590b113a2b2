//! The SSH endpoint (our Diego ssh-proxy): OpenSSH and `cf ssh` clients log in as
//! `cf:<process guid>/<index>` with a one-time code from the token issuer; the api redeems the
//! code and decides, and the session runs on the instance's cell inside its container.
//!
//! It must never run anything on its own host, nor let a session reach anything but the one
//! instance the api authorized.

pub mod host_key;
pub mod platform;
pub mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kit::ready::Readiness;
use serde::{Deserialize, Serialize};

/// Configuration of the SSH endpoint (`[ssh]`, `PAAS_SSH_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// The host key (made there on the first start, mode 0600).
    pub host_key_file: PathBuf,
    pub api_url: String,
    pub scheduler_url: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    /// Seconds a connection may stay idle.
    pub idle_timeout_secs: u64,
    /// At shutdown, seconds the sessions under way have to end before they are disconnected.
    pub drain_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 2222)),
            host_key_file: home.join(".local/share/paas/ssh/host_key"),
            api_url: "http://127.0.0.1:9000".into(),
            scheduler_url: "http://127.0.0.1:9200".into(),
            internal_client_id: "paas-internal".into(),
            internal_client_secret: String::new(),
            idle_timeout_secs: 3600,
            drain_secs: 10,
        }
    }
}

pub struct Deps {
    pub bus: bus::DynBus,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ssh listener: {0}")]
    Listen(std::io::Error),
    #[error("ssh: {0}")]
    HostKey(#[from] host_key::HostKeyError),
    #[error("invalid configuration: ssh.{0}")]
    Config(String),
}

/// What every connection shares.
pub struct Shared {
    pub platform: platform::Platform,
    pub bus: bus::DynBus,
}

pub struct Service {
    listener: tokio::net::TcpListener,
    drain: Duration,
    ready: Readiness,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    fingerprint: String,
}

/// Read (or make) the host key and bind the listener.
pub async fn build(config: Config, deps: Deps) -> Result<Service, Error> {
    let key = host_key::load_or_create(&config.host_key_file)?;
    let fingerprint = host_key::fingerprint(&key);
    let listener = kit::http::bind(config.addr).await.map_err(Error::Listen)?;
    let server = russh::server::Config {
        keys: vec![key],
        inactivity_timeout: Some(Duration::from_secs(config.idle_timeout_secs.max(1))),
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        methods: russh::MethodSet::from(&[russh::MethodKind::Password][..]),
        nodelay: true,
        ..Default::default()
    };
    let scheduler = kit::leader::Leader::parse("scheduler", &config.scheduler_url)
        .map_err(|e| Error::Config(format!("scheduler_url: {e}")))?;
    let platform = platform::Platform::new(
        &config.api_url,
        scheduler,
        &config.internal_client_id,
        &config.internal_client_secret,
    );
    let shared = Arc::new(Shared { platform, bus: deps.bus });
    let ready = Readiness::new();
    tracing::info!(%fingerprint, "ssh host key");
    Ok(Service {
        listener,
        drain: Duration::from_secs(config.drain_secs),
        ready,
        config: Arc::new(server),
        shared,
        fingerprint,
    })
}

impl Service {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn readiness(&self) -> Readiness {
        self.ready.clone()
    }

    /// The host key's `SHA256:` fingerprint, for `links.app_ssh`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Accept connections until `shutdown`, then drain: the sessions under way have
    /// `drain_secs` to end, and those still open are disconnected saying why.
    pub async fn run(self, shutdown: kit::Shutdown) -> Result<(), Error> {
        let mut conns = Connections::default();
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                Some(_) = conns.tasks.join_next(), if !conns.tasks.is_empty() => continue,
                r = self.listener.accept() => match r {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "ssh accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let handler = session::Conn::new(self.shared.clone(), Some(peer));
            conns.serve(self.config.clone(), stream, handler);
        }
        drop(self.listener);
        tracing::info!(sessions = conns.tasks.len(), "ssh endpoint stopped accepting");
        conns.drain(self.drain).await;
        Ok(())
    }
}

/// The connections being served, with a handle of each to end it.
#[derive(Default)]
struct Connections {
    tasks: tokio::task::JoinSet<()>,
    handles: Arc<std::sync::Mutex<std::collections::HashMap<u64, russh::server::Handle>>>,
    next: u64,
}

impl Connections {
    fn serve(
        &mut self,
        config: Arc<russh::server::Config>,
        stream: tokio::net::TcpStream,
        handler: session::Conn,
    ) {
        let (id, handles) = (self.next, self.handles.clone());
        self.next += 1;
        self.tasks.spawn(async move {
            match russh::server::run_stream(config, stream, handler).await {
                Ok(s) => {
                    handles.lock().unwrap_or_else(|e| e.into_inner()).insert(id, s.handle());
                    if let Err(e) = s.await {
                        tracing::debug!(error = %e, "ssh connection ended with an error");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "ssh handshake failed"),
            }
            handles.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }

    /// Wait `deadline` for every connection to end; disconnect the rest, then stop them.
    async fn drain(mut self, deadline: Duration) {
        let all_ended = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, all_ended).await.is_ok() {
            return;
        }
        let open: Vec<russh::server::Handle> =
            self.handles.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        tracing::info!(sessions = open.len(), "disconnecting the ssh sessions still open");
        for h in open {
            let _ = h
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "the ssh endpoint is shutting down; connect again in a moment".into(),
                    String::new(),
                )
                .await;
        }
        let ended = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), ended).await.is_err() {
            self.tasks.abort_all();
        }
    }
}
