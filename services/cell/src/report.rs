//! Telling the scheduler: presence heartbeats and instance reports, behind a trait so tests
//! play the scheduler.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use wire::lrp::{ActualLrp, CellPresence, ClaimResult, EvacuateResult, InstanceReport, Route};

pub trait Reporter: Send + Sync + 'static {
    fn presence<'a>(&'a self, p: &'a CellPresence) -> BoxFuture<'a, Result<(), String>>;
    /// `kind` is `claim`, `start`, `crash` or `remove`.
    fn report<'a>(
        &'a self,
        kind: &'a str,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Claim an instance; the answer may carry the desired LRP's routes as they are now.
    fn claim<'a>(
        &'a self,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<Option<Vec<Route>>, String>> {
        Box::pin(async move { self.report("claim", r).await.map(|()| None) })
    }
    /// Hand a running instance over while this cell drains; `Ok(true)`: keep it running (and
    /// routable) for now, `Ok(false)`: stop it.
    fn evacuate<'a>(&'a self, r: &'a InstanceReport) -> BoxFuture<'a, Result<bool, String>>;
    /// The instances the scheduler has on `cell_id` (every state and presence).
    fn actual<'a>(&'a self, cell_id: &'a str) -> BoxFuture<'a, Result<Vec<ActualLrp>, String>>;
    /// How a task ended.
    fn task_completed<'a>(
        &'a self,
        done: &'a wire::task::TaskCompletion,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Err(format!("task {} not reported: no scheduler", done.task_guid)) })
    }
}

/// HTTP to `<scheduler>/v1/...` with the component token, at whichever of the schedulers
/// leads.
pub struct HttpReporter {
    scheduler: kit::leader::Leader,
    http: reqwest::Client,
    token: Arc<auth::ClientCredentials>,
}

impl HttpReporter {
    pub fn new(scheduler: kit::leader::Leader, token: Arc<auth::ClientCredentials>) -> Self {
        Self { scheduler, http: kit::http::client(), token }
    }

    async fn post<T: serde::Serialize + Sync>(&self, path: &str, body: &T) -> Result<(), String> {
        self.send(path, body).await.map(|_| ())
    }

    async fn send<T: serde::Serialize + Sync>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response, String> {
        let token = self.token.token().await.map_err(|e| e.to_string())?;
        let build = |url| {
            self.http.post(url).bearer_auth(&token).json(body).timeout(Duration::from_secs(10))
        };
        let res = self.scheduler.send(path, build).await.map_err(|e| e.to_string())?;
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(format!("scheduler answered {}", res.status()))
        }
    }
}

impl Reporter for HttpReporter {
    fn presence<'a>(&'a self, p: &'a CellPresence) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.post("/v1/cells/presence", p))
    }

    fn claim<'a>(
        &'a self,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<Option<Vec<Route>>, String>> {
        Box::pin(async move {
            let res = self.send("/v1/actual_lrps/claim", r).await?;
            // A scheduler that answers 204 says nothing of the routes.
            let body = res.bytes().await.map_err(|e| e.to_string())?;
            if body.is_empty() {
                return Ok(None);
            }
            let answer: ClaimResult = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            Ok(answer.routes)
        })
    }

    fn report<'a>(
        &'a self,
        kind: &'a str,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.post(&format!("/v1/actual_lrps/{kind}"), r).await })
    }

    fn task_completed<'a>(
        &'a self,
        done: &'a wire::task::TaskCompletion,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.post(&format!("/v1/tasks/{}/completed", done.task_guid), done).await
        })
    }

    fn evacuate<'a>(&'a self, r: &'a InstanceReport) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let res = self.send("/v1/actual_lrps/evacuate", r).await?;
            let body: EvacuateResult = res.json().await.map_err(|e| e.to_string())?;
            Ok(body.keep_container)
        })
    }

    fn actual<'a>(&'a self, cell_id: &'a str) -> BoxFuture<'a, Result<Vec<ActualLrp>, String>> {
        Box::pin(async move {
            let token = self.token.token().await.map_err(|e| e.to_string())?;
            let build = |url| {
                self.http
                    .get(url)
                    .query(&[("cell_id", cell_id)])
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(30))
            };
            let res =
                self.scheduler.send("/v1/actual_lrps", build).await.map_err(|e| e.to_string())?;
            if !res.status().is_success() {
                return Err(format!("scheduler answered {}", res.status()));
            }
            res.json().await.map_err(|e| e.to_string())
        })
    }
}
