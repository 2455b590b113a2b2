//! Clients of a replicated service of which one replica leads (the scheduler: one leader on
//! the PostgreSQL lock, standbys answering changes with 503; docs/adr/0502-finding-the-scheduler-leader.md).
//!
//! [`Leader`] holds the base URLs of every replica and sends each request to the one that
//! answered last; on a connection error or a 503 it tries the next, and remembers the first
//! that answers anything else. When every replica fails (a failover under way: the old leader
//! gone, the standby not yet holding the lock) it goes round again with a short back-off until
//! its wait budget is spent. With one URL it sends once, as a plain client would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long [`Leader::send`] keeps going round several replicas that all fail.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(8);

/// The base URLs of a replicated service and the one that answered last. Cheap to clone;
/// clones share what they learn.
#[derive(Clone, Debug)]
pub struct Leader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// What the replicas are (`scheduler`), for logs.
    name: String,
    bases: Vec<String>,
    current: AtomicUsize,
    wait: Duration,
}

impl Leader {
    /// `list`: one base URL or several separated by commas (`http://a:9200,http://b:9200`);
    /// blanks around them and trailing slashes are ignored. Each must be `http://` or
    /// `https://`, and there must be at least one.
    pub fn parse(name: &str, list: &str) -> Result<Self, String> {
        let bases: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/').to_owned())
            .collect();
        if bases.is_empty() {
            return Err("no URL given".into());
        }
        if let Some(bad) =
            bases.iter().find(|b| !b.starts_with("http://") && !b.starts_with("https://"))
        {
            return Err(format!("{bad:?} must start with http:// or https://"));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                bases,
                current: AtomicUsize::new(0),
                wait: DEFAULT_WAIT,
            }),
        })
    }

    /// The same replicas with another wait budget (before the value is shared).
    #[must_use]
    pub fn with_wait(self, wait: Duration) -> Self {
        let i = &self.inner;
        Self {
            inner: Arc::new(Inner {
                name: i.name.clone(),
                bases: i.bases.clone(),
                current: AtomicUsize::new(i.current.load(Ordering::Relaxed)),
                wait,
            }),
        }
    }

    pub fn bases(&self) -> &[String] {
        &self.inner.bases
    }

    /// The base URL requests go to first.
    pub fn current(&self) -> &str {
        let i = self.inner.current.load(Ordering::Relaxed) % self.inner.bases.len();
        &self.inner.bases[i]
    }

    /// Send a request for `path` (`/v1/...`) to the leading replica. `build` makes the request
    /// for a full URL; it runs once per attempt, so a body is rebuilt for each replica.
    ///
    /// Answers the first response that is not a 503 (from any replica), else — every replica
    /// failing until the wait budget is spent — the last 503 seen, or the last error.
    pub async fn send<F>(&self, path: &str, build: F) -> Result<reqwest::Response, reqwest::Error>
    where
        F: Fn(String) -> reqwest::RequestBuilder,
    {
        let inner = &self.inner;
        let n = inner.bases.len();
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let first = inner.current.load(Ordering::Relaxed) % n;
            let mut refused: Option<reqwest::Response> = None;
            let mut failed: Option<reqwest::Error> = None;
            for k in 0..n {
                let i = (first + k) % n;
                let base = &inner.bases[i];
                match build(format!("{base}{path}")).send().await {
                    Ok(res) if res.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                        if i != first
                            && inner
                                .current
                                .compare_exchange(first, i, Ordering::Relaxed, Ordering::Relaxed)
                                .is_ok()
                        {
                            tracing::info!(replica = %base, "{} now answers at {base}", inner.name);
                        }
                        return Ok(res);
                    }
                    Ok(res) => {
                        tracing::debug!(replica = %base, "{} answered 503", inner.name);
                        refused = Some(res);
                    }
                    Err(e) => {
                        tracing::debug!(replica = %base, error = %e, "{} unreachable", inner.name);
                        failed = Some(e);
                    }
                }
            }
            let out_of_time = started.elapsed() + pause > inner.wait;
            if n == 1 || out_of_time {
                return match (refused, failed) {
                    (Some(res), _) => Ok(res),
                    (None, Some(e)) => Err(e),
                    // n ≥ 1: one of the two was set.
                    (None, None) => build(format!("{}{path}", inner.bases[first])).send().await,
                };
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::{get, put};
    use std::sync::atomic::AtomicBool;

    /// A replica answering `PUT /v1/x` with 204 when it leads, else 503; `GET /v1/x` always.
    async fn replica(leads: Arc<AtomicBool>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route(
            "/v1/x",
            put(move || {
                let leads = leads.clone();
                async move {
                    if leads.load(Ordering::SeqCst) {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            })
            .merge(get(|| async { "read" })),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// A port nothing listens on.
    fn dead() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        format!("http://127.0.0.1:{port}")
    }

    fn put_x(http: &reqwest::Client) -> impl Fn(String) -> reqwest::RequestBuilder + '_ {
        move |url| http.put(url)
    }

    #[test]
    fn parses_one_or_several_urls() {
        let one = Leader::parse("s", "http://a:1/").expect("one");
        assert_eq!(one.bases(), ["http://a:1"]);
        let two = Leader::parse("s", " http://a:1 , https://b:2/,").expect("two");
        assert_eq!(two.bases(), ["http://a:1", "https://b:2"]);
        assert_eq!(two.current(), "http://a:1");
        assert!(Leader::parse("s", " , ").is_err());
        let e = Leader::parse("s", "http://a:1,b:2").expect_err("scheme");
        assert!(e.contains("b:2"), "{e}");
    }

    #[tokio::test]
    async fn changes_go_to_the_leader_and_it_is_remembered() {
        let (a_leads, b_leads) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(true)));
        let a = replica(a_leads.clone()).await;
        let b = replica(b_leads.clone()).await;
        let leader = Leader::parse("scheduler", &format!("{a},{b}")).expect("urls");
        let http = reqwest::Client::new();
        let res = leader.send("/v1/x", put_x(&http)).await.expect("sent");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(leader.current(), b, "the leader is remembered");
        // A clone shares what was learnt.
        assert_eq!(leader.clone().current(), b);

        // Failover: b stands by, a leads.
        b_leads.store(false, Ordering::SeqCst);
        a_leads.store(true, Ordering::SeqCst);
        let res = leader.send("/v1/x", put_x(&http)).await.expect("sent");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(leader.current(), a);

        // Reads are answered by whichever answers first.
        let res = leader.send("/v1/x", |u| http.get(u)).await.expect("read");
        assert_eq!(res.text().await.expect("body"), "read");
    }

    #[tokio::test]
    async fn a_replica_that_is_down_is_skipped() {
        let b = replica(Arc::new(AtomicBool::new(true))).await;
        let leader = Leader::parse("scheduler", &format!("{},{b}", dead())).expect("urls");
        let http = reqwest::Client::new();
        let res = leader.send("/v1/x", put_x(&http)).await.expect("sent");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(leader.current(), b);
    }

    #[tokio::test]
    async fn waits_for_a_leader_during_a_failover() {
        let a_leads = Arc::new(AtomicBool::new(false));
        let a = replica(a_leads.clone()).await;
        let leader = Leader::parse("scheduler", &format!("{},{a}", dead()))
            .expect("urls")
            .with_wait(Duration::from_secs(10));
        let flip = a_leads.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            flip.store(true, Ordering::SeqCst);
        });
        let http = reqwest::Client::new();
        let started = Instant::now();
        let res = leader.send("/v1/x", put_x(&http)).await.expect("sent");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(started.elapsed() >= Duration::from_millis(600), "it waited for the new leader");
    }

    #[tokio::test]
    async fn gives_up_with_the_last_answer_when_no_replica_leads() {
        let a = replica(Arc::new(AtomicBool::new(false))).await;
        let http = reqwest::Client::new();
        let leader = Leader::parse("scheduler", &format!("{a},{}", dead()))
            .expect("urls")
            .with_wait(Duration::from_millis(400));
        let started = Instant::now();
        let res = leader.send("/v1/x", put_x(&http)).await.expect("a 503");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(3), "bounded by the wait budget");

        // One URL: one attempt, the error as it is.
        let single = Leader::parse("scheduler", &dead()).expect("url");
        let started = Instant::now();
        let e = single.send("/v1/x", put_x(&http)).await.expect_err("refused");
        assert!(e.is_connect(), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
