//! A real `nats-server` on a free port, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Start `nats-server` on a free port and wait until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(crate::free_port()).await
    }

    /// Start on a given port (used to restart a server on the same port).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start nats-server (install it: apt-get install nats-server): {e}"))?;
        let server = Self { port, child: Some(child) };
        crate::eventually("nats-server to listen", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kill the server now (to test reconnection); [`NatsServer::start_on`] brings one back.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
