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
        Self::start_any().await
    }

    /// Start on a given port (used to restart a server on the same port).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        // Another test may grab the same free port at the same moment: the server names itself
        // and we only accept a listener that answers with that name.
        let name = format!("paas-test-{}", uuid::Uuid::new_v4().simple());
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-n", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start nats-server (install it: apt-get install nats-server): {e}"
                )
            })?;
        let server = Self { port, child: Some(child) };
        let mut server = server;
        let ours = crate::eventually("nats-server to listen", Duration::from_secs(10), || {
            let name = name.clone();
            let exited = server.child.as_mut().map(|c| matches!(c.try_wait(), Ok(Some(_))));
            async move {
                if exited == Some(true) {
                    return Some(false);
                }
                let info = server_info(port).await?;
                Some(info.contains(&format!("\"server_name\":\"{name}\"")))
            }
        })
        .await?;
        if !ours {
            anyhow::bail!("port {port} was taken by another server");
        }
        Ok(server)
    }

    /// Start, retrying on another port when a concurrent test took the chosen one.
    async fn start_any() -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..5 {
            match Self::start_on(crate::free_port()).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("nats-server did not start")))
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

/// The INFO line a NATS server sends first on a new connection.
async fn server_info(port: u16) -> Option<String> {
    use tokio::io::AsyncBufReadExt as _;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut line)).await.ok()?.ok()?;
    line.starts_with("INFO").then_some(line)
}
