//! Syslog drains: the logs of an app bound to a user-provided service with a
//! `syslog_drain_url` are forwarded there in RFC 5424.
//!
//! The bindings come from the api (`GET /internal/v1/syslog_drains`, re-read every
//! `drain_refresh_secs`). Each binding has one writer task and a bounded queue; ingest only
//! offers envelopes to the queue and never waits. A full queue drops and counts, and the app's
//! stream is told `N messages lost for application <guid> in user provided syslog drain with url
//! <url>`. An unreachable drain is retried with back-off (1 s doubling to 60 s) and reported in
//! the app's stream as an `LGR` line; what is queued meanwhile is sent once it answers.
//!
//! Transports: `syslog://` (TCP) and `syslog-tls://` (TLS, system roots plus `drain_ca_file`)
//! with octet-counting framing (RFC 6587), `https://` as one POST per message.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use wire::drains::{SyslogDrain, SyslogDrains};
use wire::envelope::{Envelope, LogStream, Message};

use crate::store::Store;

const MAX_BACKOFF: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envelopes written per batch.
const BATCH: usize = 256;
/// How long after start a failure to read the bindings is not worth a warning.
const STARTUP_GRACE: Duration = Duration::from_secs(30);
/// How often lost messages are reported to the app.
const LOSS_REPORT: Duration = Duration::from_secs(1);

/// Which envelopes a drain wants (`drain-data`, `include-log-types`, `exclude-log-types`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    logs: bool,
    metrics: bool,
    /// Lower-case log types (`app`, `rtr`, `stg`, `api`, `cell`, `lgr`, ...).
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Filter {
    fn from_url(u: &url::Url) -> Self {
        let mut f = Filter { logs: true, metrics: false, include: vec![], exclude: vec![] };
        let list = |v: &str| -> Vec<String> {
            v.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect()
        };
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "drain-data" => match v.as_ref() {
                    "metrics" => (f.logs, f.metrics) = (false, true),
                    "all" => (f.logs, f.metrics) = (true, true),
                    "traces" => (f.logs, f.metrics) = (false, false),
                    _ => (f.logs, f.metrics) = (true, false),
                },
                "include-log-types" => f.include = list(&v),
                "exclude-log-types" => f.exclude = list(&v),
                _ => {}
            }
        }
        f
    }

    fn wants(&self, env: &Envelope) -> bool {
        match env.message {
            Message::Log(_) => {
                if !self.logs {
                    return false;
                }
                let kind = log_type(env.source_type().unwrap_or(""));
                (self.include.is_empty() || self.include.iter().any(|t| t == kind))
                    && !self.exclude.iter().any(|t| t == kind)
            }
            Message::Event(_) => self.logs,
            Message::Counter(_) | Message::Gauge(_) | Message::Timer(_) => self.metrics,
        }
    }
}

/// `APP/PROC/WEB` → `app`, `RTR` → `rtr`, ...
fn log_type(source_type: &str) -> &str {
    let first = source_type.split('/').next().unwrap_or("");
    match first {
        "APP" => "app",
        "RTR" => "rtr",
        "STG" => "stg",
        "API" => "api",
        "CELL" => "cell",
        "LGR" => "lgr",
        "SSH" => "ssh",
        "HEALTH" => "health",
        "PROXY" => "proxy",
        _ => "other",
    }
}

/// `scheme://host:port/path` without credentials or query, for messages to the user.
pub fn anonymized(u: &url::Url) -> String {
    let host = u.host_str().unwrap_or("");
    match u.port() {
        Some(p) => format!("{}://{host}:{p}{}", u.scheme(), u.path().trim_end_matches('/')),
        None => format!("{}://{host}{}", u.scheme(), u.path().trim_end_matches('/')),
    }
}

/// RFC 3339 in UTC with microseconds, trailing zeros of the fraction dropped (Go's
/// `2006-01-02T15:04:05.999999-07:00`).
fn timestamp(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let micros = t.microsecond();
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micros > 0 {
        let frac = format!("{micros:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str("+00:00");
    out
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An SD-NAME or PROCID: printable ASCII without spaces.
fn token(v: &str) -> String {
    v.chars().map(|c| if c.is_ascii_graphic() { c } else { '-' }).collect()
}

fn header(pri: u8, ts: i64, hostname: &str, app: &str, procid: &str) -> String {
    format!(
        "<{pri}>1 {} {} {} [{}] - ",
        timestamp(ts),
        if hostname.is_empty() { "-" } else { hostname },
        if app.is_empty() { "-" } else { app },
        token(procid)
    )
}

fn tags_sd(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return "-".into();
    }
    let mut sd = "[tags@47450".to_owned();
    for (k, v) in tags {
        let _ = write!(sd, " {}=\"{}\"", token(k), sd_value(v));
    }
    sd.push(']');
    sd
}

/// The RFC 5424 messages for one envelope (gauges give one per metric), without framing.
pub fn rfc5424(env: &Envelope, hostname: &str) -> Vec<Vec<u8>> {
    let app = env.source_id.as_str();
    let metric = |sd: String| {
        let mut m = header(14, env.timestamp, hostname, app, &env.instance_id);
        m.push_str(&sd);
        m.push(' ');
        m.into_bytes()
    };
    match &env.message {
        Message::Log(log) => {
            let source_type = env.source_type().unwrap_or("");
            let pri = if log.stream == LogStream::Err { 11 } else { 14 };
            let procid = format!("{source_type}/{}", env.instance_id);
            let mut m = header(pri, env.timestamp, hostname, app, &procid).into_bytes();
            m.extend_from_slice(tags_sd(&env.tags).as_bytes());
            m.push(b' ');
            let payload = env.log_bytes().unwrap_or_default();
            m.extend(payload.into_iter().filter(|b| *b != 0));
            if m.last() != Some(&b'\n') {
                m.push(b'\n');
            }
            vec![m]
        }
        Message::Gauge(g) => g
            .metrics
            .iter()
            .map(|(name, v)| {
                metric(format!(
                    "[gauge@47450 name=\"{}\" value=\"{}\" unit=\"{}\"]",
                    sd_value(name),
                    v.value,
                    sd_value(&v.unit)
                ))
            })
            .collect(),
        Message::Counter(c) => vec![metric(format!(
            "[counter@47450 name=\"{}\" total=\"{}\" delta=\"{}\"]",
            sd_value(&c.name),
            c.total,
            c.delta
        ))],
        Message::Timer(t) => vec![metric(format!(
            "[timer@47450 name=\"{}\" start=\"{}\" stop=\"{}\"]",
            sd_value(&t.name),
            t.start,
            t.stop
        ))],
        Message::Event(e) => vec![metric(format!(
            "[event@47450 title=\"{}\" body=\"{}\"]",
            sd_value(&e.title),
            sd_value(&e.body)
        ))],
    }
}

/// Octet-counting framing: `<length> <message>`.
fn frame(msg: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// The ingest side of one drain.
struct Handle {
    key: (String, String),
    filter: Filter,
    tx: mpsc::Sender<Arc<Envelope>>,
    lost: Arc<Mutex<u64>>,
    stop: kit::Shutdown,
}

/// Settings shared by every drain.
#[derive(Clone)]
pub struct Settings {
    pub api_url: String,
    pub refresh: Duration,
    pub buffer: usize,
    pub tls: Arc<rustls::ClientConfig>,
}

/// The drains of every app, kept in step with the api.
pub struct Drains {
    by_app: RwLock<HashMap<String, Vec<Handle>>>,
    settings: Settings,
    store: Arc<Store>,
    http: reqwest::Client,
    sent: Counter,
    dropped: Counter,
    failures: Counter,
}

impl Drains {
    pub fn new(settings: Settings, store: Arc<Store>, metrics: &kit::metrics::Metrics) -> Self {
        let (sent, dropped, failures) =
            (Counter::default(), Counter::default(), Counter::default());
        metrics.register("drain_messages_sent", "Messages written to syslog drains", sent.clone());
        metrics.register(
            "drain_messages_dropped",
            "Messages dropped because a drain's queue was full",
            dropped.clone(),
        );
        metrics.register("drain_failures", "Failed drain connections and writes", failures.clone());
        Self {
            by_app: RwLock::default(),
            settings,
            store,
            http: reqwest::Client::new(),
            sent,
            dropped,
            failures,
        }
    }

    /// Queue `env` for the drains of its app; never waits.
    pub fn offer(&self, env: &Arc<Envelope>) {
        let by_app = self.by_app.read().unwrap_or_else(|e| e.into_inner());
        let Some(handles) = by_app.get(&env.source_id) else { return };
        for h in handles.iter().filter(|h| h.filter.wants(env)) {
            if h.tx.try_send(env.clone()).is_err() {
                self.dropped.inc();
                *h.lost.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
        }
    }

    /// How many drains run now.
    pub fn count(&self) -> usize {
        self.by_app.read().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }

    /// Start writers for new bindings and stop those of removed ones.
    pub fn apply(self: &Arc<Self>, wanted: &[SyslogDrain]) {
        let mut by_app = self.by_app.write().unwrap_or_else(|e| e.into_inner());
        let keep: std::collections::HashSet<(String, String)> =
            wanted.iter().map(|d| (d.binding_guid.clone(), d.url.clone())).collect();
        for handles in by_app.values_mut() {
            handles.retain(|h| {
                let stays = keep.contains(&h.key);
                if !stays {
                    h.stop.cancel();
                }
                stays
            });
        }
        by_app.retain(|_, h| !h.is_empty());
        for d in wanted {
            let key = (d.binding_guid.clone(), d.url.clone());
            let present = by_app.get(&d.app_guid).is_some_and(|hs| hs.iter().any(|h| h.key == key));
            if present {
                continue;
            }
            let Ok(parsed) = url::Url::parse(&d.url) else {
                tracing::warn!(binding = %d.binding_guid, "drain url does not parse; skipped");
                continue;
            };
            let (tx, rx) = mpsc::channel(self.settings.buffer.max(1));
            let lost = Arc::new(Mutex::new(0));
            let stop = kit::Shutdown::new();
            let writer = Writer {
                drains: self.clone(),
                url: parsed.clone(),
                hostname: d.hostname.clone(),
                app: d.app_guid.clone(),
                rx,
                lost: lost.clone(),
                stop: stop.clone(),
            };
            kit::spawn_named("logs-drain", writer.run());
            by_app.entry(d.app_guid.clone()).or_default().push(Handle {
                key,
                filter: Filter::from_url(&parsed),
                tx,
                lost,
                stop,
            });
        }
    }

    /// Re-read the bindings from the api until `shutdown`.
    pub async fn follow(
        self: Arc<Self>,
        tokens: Arc<auth::ClientCredentials>,
        shutdown: kit::Shutdown,
    ) {
        let url = format!("{}/internal/v1/syslog_drains", self.settings.api_url);
        let started = std::time::Instant::now();
        let mut read_once = false;
        loop {
            match self.fetch(&url, &tokens).await {
                Ok(list) => {
                    self.apply(&list.drains);
                    read_once = true;
                }
                // The api may still be starting (`paasd dev` starts everything at once).
                Err(e) if !read_once && started.elapsed() < STARTUP_GRACE => {
                    tracing::debug!(error = %e, "syslog drain bindings not readable yet");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the syslog drain bindings; keeping the current ones")
                }
            }
            // Until the first answer, ask every second.
            let wait = if read_once {
                self.settings.refresh
            } else {
                self.settings.refresh.min(Duration::from_secs(1))
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.apply(&[]);
    }

    async fn fetch(
        &self,
        url: &str,
        tokens: &auth::ClientCredentials,
    ) -> Result<SyslogDrains, String> {
        let token = tokens.token().await.map_err(|e| e.to_string())?;
        let res = self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            tokens.invalidate().await;
        }
        if !res.status().is_success() {
            return Err(format!("{url}: {}", res.status()));
        }
        res.json().await.map_err(|e| e.to_string())
    }

    /// An `LGR` line in the app's own stream (not forwarded to drains).
    fn tell_app(&self, app: &str, text: String) {
        self.store.insert_lgr(app, text);
    }
}

/// One connection to a drain.
enum Conn {
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    Https,
}

/// The task writing one binding's queue to its drain.
struct Writer {
    drains: Arc<Drains>,
    url: url::Url,
    hostname: String,
    app: String,
    rx: mpsc::Receiver<Arc<Envelope>>,
    lost: Arc<Mutex<u64>>,
    stop: kit::Shutdown,
}

impl Writer {
    async fn run(mut self) {
        let shown = anonymized(&self.url);
        let mut backoff = Duration::from_secs(1);
        let mut conn: Option<Conn> = None;
        // Framed messages taken from the queue but not yet written.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut report = tokio::time::interval(LOSS_REPORT);
        let mut failing = false;
        loop {
            if pending.is_empty() {
                tokio::select! {
                    () = self.stop.cancelled() => return,
                    _ = report.tick() => { self.report_losses(&shown); continue; }
                    env = self.rx.recv() => match env {
                        Some(env) => pending.extend(rfc5424(&env, &self.hostname)),
                        None => return,
                    },
                }
                while pending.len() < BATCH {
                    match self.rx.try_recv() {
                        Ok(env) => pending.extend(rfc5424(&env, &self.hostname)),
                        Err(_) => break,
                    }
                }
            }
            if conn.is_none() {
                match self.connect().await {
                    Ok(c) => {
                        if failing {
                            self.drains.tell_app(
                                &self.app,
                                format!("Syslog drain {shown} is reachable again."),
                            );
                        }
                        conn = Some(c);
                        failing = false;
                        backoff = Duration::from_secs(1);
                    }
                    Err(e) => {
                        self.drains.failures.inc();
                        if !failing {
                            self.drains.tell_app(
                                &self.app,
                                format!("Syslog drain {shown} unreachable: {e}. Retrying with back-off; logs are kept for it until its queue is full."),
                            );
                        }
                        failing = true;
                        if !self.pause(&mut backoff, &shown).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match self.write(c, &pending).await {
                Ok(()) => {
                    self.drains.sent.inc_by(pending.len() as u64);
                    pending.clear();
                }
                Err(e) => {
                    self.drains.failures.inc();
                    tracing::debug!(drain = %shown, error = %e, "drain write failed; reconnecting");
                    conn = None;
                    if !failing {
                        self.drains.tell_app(
                            &self.app,
                            format!("Syslog drain {shown} failed: {e}. Retrying with back-off."),
                        );
                    }
                    failing = true;
                    if !self.pause(&mut backoff, &shown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Wait out the back-off (reporting losses meanwhile); false when stopped.
    async fn pause(&mut self, backoff: &mut Duration, shown: &str) -> bool {
        let until = tokio::time::Instant::now() + *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return false,
                () = tokio::time::sleep_until(until) => return true,
                () = tokio::time::sleep(LOSS_REPORT) => self.report_losses(shown),
            }
        }
    }

    fn report_losses(&self, shown: &str) {
        let n = std::mem::take(&mut *self.lost.lock().unwrap_or_else(|e| e.into_inner()));
        if n > 0 {
            self.drains.tell_app(
                &self.app,
                format!(
                    "{n} messages lost for application {} in user provided syslog drain with url {shown}",
                    self.app
                ),
            );
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let host = self.url.host_str().ok_or("no host")?.to_owned();
        let port = self.url.port_or_known_default().unwrap_or(514);
        let tcp = || async {
            let s = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            .map_err(|_| "connection timed out".to_owned())?
            .map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            Ok::<_, String>(s)
        };
        match self.url.scheme() {
            "syslog" => Ok(Conn::Stream(Box::new(tcp().await?))),
            "syslog-tls" => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| e.to_string())?;
                let tls = tokio_rustls::TlsConnector::from(self.drains.settings.tls.clone());
                let s = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp().await?))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_owned())?
                    .map_err(|e| format!("TLS: {e}"))?;
                Ok(Conn::Stream(Box::new(s)))
            }
            "https" => Ok(Conn::Https),
            other => Err(format!("unsupported scheme {other}")),
        }
    }

    async fn write(&self, c: &mut Conn, msgs: &[Vec<u8>]) -> Result<(), String> {
        match c {
            Conn::Stream(s) => {
                let mut buf = Vec::with_capacity(msgs.iter().map(|m| m.len() + 8).sum());
                for m in msgs {
                    frame(m, &mut buf);
                }
                s.write_all(&buf).await.map_err(|e| e.to_string())?;
                s.flush().await.map_err(|e| e.to_string())
            }
            Conn::Https => {
                for m in msgs {
                    let res = self
                        .drains
                        .http
                        .post(self.url.clone())
                        .header("content-type", "text/plain")
                        .body(m.clone())
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !res.status().is_success() {
                        return Err(format!("answered {}", res.status()));
                    }
                }
                Ok(())
            }
        }
    }
}

/// TLS settings for `syslog-tls://` drains: the bundled web roots plus a PEM file of more.
pub fn tls_config(ca_file: &str) -> Result<rustls::ClientConfig, String> {
    kit::tls::client_config(ca_file, "drain_ca_file")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gv(name: &str, value: f64, unit: &str) -> (String, wire::envelope::GaugeValue) {
        (name.into(), wire::envelope::GaugeValue { unit: unit.into(), value })
    }

    fn at(env: Envelope, ns: i64) -> Envelope {
        Envelope { timestamp: ns, ..env }
    }

    #[test]
    fn log_lines_have_cf_rfc5424_shape() {
        let env = at(
            Envelope::log("app-guid", "2", "APP/PROC/WEB", "hello\0 world", LogStream::Out),
            12_345_000,
        );
        let msg = String::from_utf8(rfc5424(&env, "org.space.app").remove(0)).expect("utf8");
        assert_eq!(
            msg,
            "<14>1 1970-01-01T00:00:00.012345+00:00 org.space.app app-guid [APP/PROC/WEB/2] - [tags@47450 source_type=\"APP/PROC/WEB\"] hello world\n"
        );
        let err = at(Envelope::log("a", "0", "STG", "boom\n", LogStream::Err), 1_000_000_000);
        let msg = String::from_utf8(rfc5424(&err, "h").remove(0)).expect("utf8");
        assert!(msg.starts_with("<11>1 1970-01-01T00:00:01+00:00 h a [STG/0] - "), "{msg}");
        assert!(msg.ends_with("boom\n") && !msg.ends_with("\n\n"), "{msg}");
        let tagged = env.clone().with_tag("quote", "a\"b]c\\");
        let msg = String::from_utf8(rfc5424(&tagged, "h").remove(0)).expect("utf8");
        assert!(msg.contains(r#"quote="a\"b\]c\\""#), "{msg}");
    }

    #[test]
    fn gauges_give_one_message_per_metric() {
        let env = at(
            Envelope::gauge(
                "app",
                "1",
                [gv("cpu", 0.23, "percentage"), gv("memory", 5423.0, "bytes")],
            ),
            0,
        );
        let msgs: Vec<String> =
            rfc5424(&env, "h").into_iter().map(|m| String::from_utf8(m).expect("utf8")).collect();
        assert_eq!(
            msgs,
            [
                "<14>1 1970-01-01T00:00:00+00:00 h app [1] - [gauge@47450 name=\"cpu\" value=\"0.23\" unit=\"percentage\"] ",
                "<14>1 1970-01-01T00:00:00+00:00 h app [1] - [gauge@47450 name=\"memory\" value=\"5423\" unit=\"bytes\"] ",
            ]
        );
    }

    #[test]
    fn framing_counts_octets() {
        let mut out = Vec::new();
        frame("héllo\n".as_bytes(), &mut out);
        assert_eq!(out, b"7 h\xc3\xa9llo\n");
    }

    #[test]
    fn filters_follow_the_url_options() {
        let f = |u: &str| Filter::from_url(&url::Url::parse(u).expect("url"));
        let app = Envelope::log("a", "0", "APP/PROC/WEB", "x", LogStream::Out);
        let rtr = Envelope::log("a", "0", "RTR", "x", LogStream::Out);
        let gauge = Envelope::gauge("a", "0", [gv("cpu", 1.0, "percentage")]);
        let plain = f("syslog://h:1");
        assert!(plain.wants(&app) && plain.wants(&rtr) && !plain.wants(&gauge));
        let all = f("syslog://h:1?drain-data=all");
        assert!(all.wants(&app) && all.wants(&gauge));
        let metrics = f("syslog://h:1?drain-data=metrics");
        assert!(!metrics.wants(&app) && metrics.wants(&gauge));
        assert!(!f("syslog://h:1?include-log-types=app").wants(&rtr));
        assert!(f("syslog://h:1?include-log-types=app,rtr").wants(&rtr));
        assert!(!f("syslog://h:1?exclude-log-types=rtr").wants(&rtr));
    }

    #[test]
    fn urls_shown_to_users_lose_credentials_and_options() {
        let u = url::Url::parse("syslog-tls://user:pw@logs.example.com:6514/?drain-data=all")
            .expect("url");
        assert_eq!(anonymized(&u), "syslog-tls://logs.example.com:6514");
    }
}
