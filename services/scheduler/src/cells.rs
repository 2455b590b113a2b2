//! Talking to cells: their state for the auction, work to start, instances to stop, routes
//! that changed. A trait, so tests and the simulation use cells in memory.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use wire::lrp::{CellState, RoutesUpdate, StopRequest, Work, WorkResult};
use wire::task::{TaskCancel, TaskCompletion, TaskDefinition};

pub trait CellClient: Send + Sync + 'static {
    fn state<'a>(&'a self, rep_url: &'a str) -> BoxFuture<'a, Result<CellState, String>>;
    fn perform<'a>(
        &'a self,
        rep_url: &'a str,
        work: Work,
    ) -> BoxFuture<'a, Result<WorkResult, String>>;
    fn stop<'a>(&'a self, rep_url: &'a str, req: StopRequest) -> BoxFuture<'a, Result<(), String>>;
    fn update_routes<'a>(
        &'a self,
        rep_url: &'a str,
        req: RoutesUpdate,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Run a task once on the cell.
    fn run_task<'a>(
        &'a self,
        rep_url: &'a str,
        _task: TaskDefinition,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Err(format!("{rep_url} runs no tasks")) })
    }
    /// Stop a task running on the cell.
    fn cancel_task<'a>(
        &'a self,
        rep_url: &'a str,
        _req: TaskCancel,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Err(format!("{rep_url} runs no tasks")) })
    }
    /// Tell a task's owner how it ended (its completion callback URL).
    fn task_callback<'a>(
        &'a self,
        url: &'a str,
        _done: TaskCompletion,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Err(format!("no callbacks to {url}")) })
    }
}

pub type DynCellClient = Arc<dyn CellClient>;

/// The real client: HTTP with the component token.
pub struct HttpCells {
    http: reqwest::Client,
    token: Arc<auth::ClientCredentials>,
}

impl HttpCells {
    pub fn new(token: Arc<auth::ClientCredentials>) -> Self {
        Self { http: kit::http::client(), token }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, String> {
        let token = self.token.token().await.map_err(|e| e.to_string())?;
        let res = kit::http::propagate(req.bearer_auth(token).timeout(Duration::from_secs(10)))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("cell answered {}", res.status()));
        }
        res.json().await.map_err(|e| e.to_string())
    }
}

impl CellClient for HttpCells {
    fn state<'a>(&'a self, rep_url: &'a str) -> BoxFuture<'a, Result<CellState, String>> {
        Box::pin(self.send(self.http.get(format!("{rep_url}/internal/v1/state"))))
    }

    fn perform<'a>(
        &'a self,
        rep_url: &'a str,
        work: Work,
    ) -> BoxFuture<'a, Result<WorkResult, String>> {
        Box::pin(self.send(self.http.post(format!("{rep_url}/internal/v1/work")).json(&work)))
    }

    fn stop<'a>(&'a self, rep_url: &'a str, req: StopRequest) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.accepted(self.http.post(format!("{rep_url}/internal/v1/stop")).json(&req)))
    }

    fn update_routes<'a>(
        &'a self,
        rep_url: &'a str,
        req: RoutesUpdate,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.accepted(self.http.post(format!("{rep_url}/internal/v1/routes")).json(&req)))
    }

    fn run_task<'a>(
        &'a self,
        rep_url: &'a str,
        task: TaskDefinition,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.accepted(self.http.post(format!("{rep_url}/internal/v1/tasks")).json(&task)))
    }

    fn cancel_task<'a>(
        &'a self,
        rep_url: &'a str,
        req: TaskCancel,
    ) -> BoxFuture<'a, Result<(), String>> {
        let url = format!("{rep_url}/internal/v1/tasks/cancel");
        Box::pin(self.accepted(self.http.post(url).json(&req)))
    }

    fn task_callback<'a>(
        &'a self,
        url: &'a str,
        done: TaskCompletion,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.accepted(self.http.post(url).json(&done)))
    }
}

impl HttpCells {
    /// Send a request the cell answers with no body: 202, or 404 when it holds nothing of it.
    async fn accepted(&self, req: reqwest::RequestBuilder) -> Result<(), String> {
        let token = self.token.token().await.map_err(|e| e.to_string())?;
        let res = kit::http::propagate(req.bearer_auth(token).timeout(Duration::from_secs(10)))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status().is_success() || res.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(format!("cell answered {}", res.status()))
        }
    }
}
