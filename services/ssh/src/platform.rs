//! The endpoint's calls to the rest of the platform, all with its component token: the api
//! redeems a code for an instance, the scheduler says where the instance's cell listens, and
//! the cell runs the session (an upgraded connection per channel).

use auth::ClientCredentials;
use base64::Engine as _;
use wire::ssh::{Authorize, Authorized, ExecRequest, Refused, UPGRADE};

/// Why a login or a channel could not go on; `Refused` carries the api's words.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

pub struct Platform {
    api: String,
    scheduler: kit::leader::Leader,
    tokens: ClientCredentials,
    http: reqwest::Client,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Unavailable(format!("{what}: {e}"))
}

impl Platform {
    pub fn new(api: &str, scheduler: kit::leader::Leader, client_id: &str, secret: &str) -> Self {
        let api = api.trim_end_matches('/').to_owned();
        let tokens = ClientCredentials::new(format!("{api}/oauth/token"), client_id, secret);
        // No overall timeout: session connections live as long as the session.
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { api, scheduler, tokens, http }
    }

    async fn token(&self) -> Result<String, PlatformError> {
        self.tokens.token().await.map_err(|e| unavailable("component token", e))
    }

    /// Redeem `req.code` for the instance it names.
    pub async fn authorize(&self, req: &Authorize) -> Result<Authorized, PlatformError> {
        let res = self
            .http
            .post(format!("{}/internal/v1/ssh/authorize", self.api))
            .bearer_auth(self.token().await?)
            .timeout(std::time::Duration::from_secs(30))
            .json(req)
            .send()
            .await
            .map_err(|e| unavailable("the api", e))?;
        let status = res.status();
        if status.is_success() {
            return res.json().await.map_err(|e| unavailable("the api's answer", e));
        }
        if status.is_client_error() {
            if let Ok(r) = res.json::<Refused>().await {
                if !r.error.is_empty() {
                    return Err(PlatformError::Refused(r.error));
                }
            }
        }
        Err(PlatformError::Unavailable(format!("the api answered {status}")))
    }

    /// The base URL of a cell's API.
    pub async fn cell_url(&self, cell_id: &str) -> Result<String, PlatformError> {
        let token = self.token().await?;
        let build = |url| {
            self.http.get(url).bearer_auth(&token).timeout(std::time::Duration::from_secs(30))
        };
        let res = self
            .scheduler
            .send("/v1/cells", build)
            .await
            .map_err(|e| unavailable("the scheduler", e))?;
        if !res.status().is_success() {
            return Err(PlatformError::Unavailable(format!(
                "the scheduler answered {}",
                res.status()
            )));
        }
        let cells: Vec<serde_json::Value> =
            res.json().await.map_err(|e| unavailable("the scheduler's answer", e))?;
        cells
            .iter()
            .filter_map(|c| c.get("presence"))
            .find(|p| p["cell_id"].as_str() == Some(cell_id))
            .and_then(|p| p["rep_url"].as_str())
            .map(|u| u.trim_end_matches('/').to_owned())
            .ok_or_else(|| PlatformError::Unavailable(format!("cell {cell_id} is not known")))
    }

    async fn upgrade(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Upgraded, PlatformError> {
        let res = req
            .bearer_auth(self.token().await?)
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, UPGRADE)
            .send()
            .await
            .map_err(|e| unavailable("the cell", e))?;
        if res.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            return Err(PlatformError::Unavailable(format!(
                "the cell answered {status}: {}",
                body.trim()
            )));
        }
        res.upgrade().await.map_err(|e| unavailable("the cell", e))
    }

    /// A session on the instance: frames of `wire::ssh::Frame` over the returned stream.
    pub async fn exec(
        &self,
        cell: &str,
        instance_guid: &str,
        req: &ExecRequest,
    ) -> Result<reqwest::Upgraded, PlatformError> {
        let spec = serde_json::to_vec(req).map_err(|e| unavailable("the request", e))?;
        let spec = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(spec);
        let url = format!("{cell}/internal/v1/instances/{instance_guid}/exec");
        self.upgrade(self.http.post(url).header("x-paas-exec", spec)).await
    }

    /// A TCP connection to the instance's `port`, as a byte stream.
    pub async fn connect(
        &self,
        cell: &str,
        instance_guid: &str,
        port: u16,
    ) -> Result<reqwest::Upgraded, PlatformError> {
        let url = format!("{cell}/internal/v1/instances/{instance_guid}/connect?port={port}");
        self.upgrade(self.http.post(url)).await
    }
}
