//! `paas logs`: the app's lines from the logs service (log-cache API), recent or followed,
//! in the cf CLI's format; also the staging output `push` streams.

use base64::Engine as _;
use serde_json::Value;

use crate::client::{query, Client, Result};
use crate::error::CliError;

/// `2026-11-25T04:41:45.50+0000 [APP/PROC/WEB/0] OUT hello`.
pub fn format(e: &Value) -> Option<String> {
    let ts: i64 =
        e["timestamp"].as_str().and_then(|t| t.parse().ok()).or_else(|| e["timestamp"].as_i64())?;
    let payload =
        base64::engine::general_purpose::STANDARD.decode(e["log"]["payload"].as_str()?).ok()?;
    let line = String::from_utf8_lossy(&payload);
    let source = e["tags"]["source_type"].as_str().unwrap_or("");
    let instance = e["instance_id"].as_str().unwrap_or("");
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts)).ok()?;
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:2]+0000"
    );
    let stream = e["log"]["type"].as_str().unwrap_or("OUT");
    let tag = if instance.is_empty() { source.to_owned() } else { format!("{source}/{instance}") };
    Some(format!("   {} [{tag}] {stream} {}", t.format(&f).ok()?, line.trim_end_matches('\n')))
}

/// New lines of one app since a point in time.
pub struct Tail {
    app: String,
    since: i64,
    only: Option<&'static str>,
    warned: bool,
}

impl Tail {
    pub fn new(app: &str, since_ns: i64, only: Option<&'static str>) -> Self {
        Self { app: app.to_owned(), since: since_ns, only, warned: false }
    }

    async fn read(&mut self, c: &mut Client, q: &str) -> Result<Vec<Value>> {
        let token = c.token().await?;
        if c.cfg.log_cache.is_empty() {
            return Err(CliError::Failed("this platform advertises no logs endpoint".into()));
        }
        let url = format!("{}/api/v1/read/{}{q}", c.cfg.log_cache.trim_end_matches('/'), self.app);
        let res = c.http.get(url).bearer_auth(token).send().await?;
        if !res.status().is_success() {
            return Err(crate::client::api_error(res).await);
        }
        let v: Value = res.json().await?;
        Ok(v["envelopes"]["batch"].as_array().cloned().unwrap_or_default())
    }

    /// Print what arrived since the last call; problems are a warning, once.
    pub async fn print_new(&mut self, c: &mut Client) {
        let q = query(&[
            ("start_time", &(self.since + 1).to_string()),
            ("envelope_types", "LOG"),
            ("limit", "1000"),
        ]);
        match self.read(c, &q).await {
            Ok(batch) => {
                for e in batch {
                    if let Some(ts) = e["timestamp"].as_str().and_then(|t| t.parse::<i64>().ok()) {
                        self.since = self.since.max(ts);
                    }
                    if self.only.is_some_and(|o| e["tags"]["source_type"].as_str() != Some(o)) {
                        continue;
                    }
                    if let Some(line) = format(&e) {
                        println!("{line}");
                    }
                }
            }
            Err(e) if !self.warned => {
                self.warned = true;
                eprintln!("Failed to retrieve logs from the logs service: {e}");
            }
            Err(_) => {}
        }
    }
}

pub async fn logs(c: &mut Client, name: &str, recent: bool) -> Result<()> {
    let app = c.app(name).await?;
    let mut tail = Tail::new(&app.guid, 0, None);
    if recent {
        println!("Retrieving logs for app {name}...\n");
        let mut batch = tail.read(c, "?envelope_types=LOG&limit=1000&descending=true").await?;
        batch.reverse();
        for e in batch {
            if let Some(line) = format(&e) {
                println!("{line}");
            }
        }
        return Ok(());
    }
    println!("Retrieving logs for app {name}...\n");
    tail.since = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 - 1_000_000_000;
    loop {
        tail.print_new(c).await;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_cf() {
        let e = serde_json::json!({"timestamp": "1700000000500000000", "instance_id": "0", "tags": {"source_type": "APP/PROC/WEB"},
            "log": {"payload": base64::engine::general_purpose::STANDARD.encode("hello\n"), "type": "OUT"}});
        assert_eq!(
            format(&e).expect("line"),
            "   2023-11-14T22:13:20.50+0000 [APP/PROC/WEB/0] OUT hello"
        );
    }
}
