//! Health checks: port (TCP connect), http (GET, 200), process
//! (none: healthy while the process lives).

use std::time::Duration;

use wire::lrp::{HealthCheck, HealthCheckType};

/// One check against the container at `ip:port`.
pub async fn check(hc: &HealthCheck, ip: &str, port: u16) -> bool {
    let timeout = Duration::from_secs(hc.invocation_timeout_secs.max(1));
    match hc.kind {
        HealthCheckType::Process => true,
        HealthCheckType::Port => {
            matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await,
                Ok(Ok(_))
            )
        }
        HealthCheckType::Http => {
            let path = hc.endpoint.as_deref().unwrap_or("/");
            let url = format!(
                "http://{ip}:{port}{}",
                if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
            );
            let client = reqwest::Client::builder().no_proxy().timeout(timeout).build();
            match client {
                Ok(c) => {
                    c.get(url).send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
                }
                Err(_) => false,
            }
        }
    }
}

/// How CF words the start timeout: "Timed out after 1m0s: health check never passed."
pub fn start_timeout_message(secs: u64) -> String {
    format!("Timed out after {}: health check never passed.", go_duration(secs))
}

fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_matches_diego() {
        assert_eq!(start_timeout_message(60), "Timed out after 1m0s: health check never passed.");
        assert_eq!(start_timeout_message(5), "Timed out after 5s: health check never passed.");
        assert_eq!(start_timeout_message(180), "Timed out after 3m0s: health check never passed.");
    }

    #[tokio::test]
    async fn port_and_process_checks() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let hc = HealthCheck::default();
        assert!(check(&hc, "127.0.0.1", port).await);
        drop(l);
        assert!(!check(&hc, "127.0.0.1", port).await);
        let process = HealthCheck { kind: HealthCheckType::Process, ..HealthCheck::default() };
        assert!(check(&process, "127.0.0.1", port).await);
    }
}
