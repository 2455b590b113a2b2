//! Shutdown of the SSH endpoint: no new connection is taken, the connections under way get the
//! drain time to end, and those still open then are disconnected with a reason a client shows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client;

/// A client that accepts any host key and keeps the server's disconnect message.
#[derive(Clone, Default)]
struct Client {
    told: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        if let client::DisconnectReason::ReceivedDisconnect(info) = reason {
            *self.told.lock().expect("lock") = Some(info.message);
        }
        Ok(())
    }
}

async fn endpoint(
    drain_secs: u64,
) -> (std::net::SocketAddr, kit::Shutdown, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let config = ssh::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        host_key_file: dir.path().join("host_key"),
        api_url: "http://127.0.0.1:9".into(),
        scheduler_url: "http://127.0.0.1:9".into(),
        drain_secs,
        ..Default::default()
    };
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let service = ssh::build(config, ssh::Deps { bus }).await.expect("build");
    let addr = service.local_addr();
    let shutdown = kit::Shutdown::new();
    let run = tokio::spawn({
        let s = shutdown.clone();
        async move { service.run(s).await.expect("run") }
    });
    (addr, shutdown, run, dir)
}

async fn connect(addr: std::net::SocketAddr, c: Client) -> client::Handle<Client> {
    let config = Arc::new(client::Config::default());
    client::connect(config, addr, c).await.expect("handshake")
}

#[tokio::test]
async fn sessions_still_open_after_the_drain_are_told_why_and_closed() {
    let (addr, shutdown, run, _dir) = endpoint(1).await;
    let c = Client::default();
    let session = connect(addr, c.clone()).await;
    let asked = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run).await.expect("stops").expect("joins");
    assert!(asked.elapsed() >= Duration::from_millis(900), "the session had its drain time");
    for _ in 0..50 {
        if session.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(session.is_closed(), "the session was closed");
    let told = c.told.lock().expect("lock").clone();
    assert_eq!(
        told.as_deref(),
        Some("the ssh endpoint is shutting down; connect again in a moment")
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no new connection is taken");
}

#[tokio::test]
async fn shutdown_ends_as_soon_as_the_last_session_does() {
    let (addr, shutdown, run, _dir) = endpoint(30).await;
    let c = Client::default();
    let session = connect(addr, c.clone()).await;
    let asked = Instant::now();
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!run.is_finished(), "an open session holds the shutdown");
    session.disconnect(russh::Disconnect::ByApplication, "done", "").await.expect("disconnect");
    tokio::time::timeout(Duration::from_secs(10), run).await.expect("stops").expect("joins");
    assert!(asked.elapsed() < Duration::from_secs(10), "not the whole drain time");
    assert_eq!(c.told.lock().expect("lock").clone(), None, "nobody was disconnected");
}
