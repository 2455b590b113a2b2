//! Talking to the API: bearer tokens refreshed before they expire (and once more after a
//! `CF-InvalidAuthToken`), CF v3 errors turned into [`CliError`]s, answers read as the types of
//! `wire::v3`, lists followed through `pagination.next`, jobs polled to the end.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wire::v3::{ErrorEntry, Job, JobState, Page};

use crate::config::Config;
use crate::error::CliError;
use crate::token::{self, Grant};

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// For answers whose body the caller does not need.
pub type Ignored = serde::de::IgnoredAny;

/// A request body.
pub enum Body {
    None,
    Json(String),
    Yaml(String),
}

impl Body {
    pub fn json(body: &impl Serialize) -> Result<Self> {
        serde_json::to_string(body)
            .map(Self::Json)
            .map_err(|e| CliError::Other(format!("cannot encode the request: {e}")))
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub cfg: Config,
    /// Milliseconds between polls of jobs, builds and instances.
    pub poll: Duration,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("paas/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// What an error answer may hold: CF v3's `errors`, or the token endpoint's OAuth error.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Option<Vec<ErrorEntry>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The error of a non-2xx answer.
pub async fn api_error(res: reqwest::Response) -> CliError {
    let status = res.status().as_u16();
    let request_id =
        res.headers().get("x-vcap-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.unwrap_or_default();
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
    if let Some(all) = body.errors.filter(|e| !e.is_empty()) {
        let detail = all
            .iter()
            .map(|e| e.detail.as_str())
            .filter(|d| !d.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        return CliError::Api { status, title: all[0].title.clone(), detail, request_id };
    }
    if let Some(d) = body.error_description {
        return CliError::Api {
            status,
            title: body.error.unwrap_or_default(),
            detail: d,
            request_id,
        };
    }
    let detail = if text.trim().is_empty() {
        format!("the API answered {status}")
    } else {
        format!("the API answered {status}: {}", text.trim())
    };
    CliError::Api { status, title: String::new(), detail, request_id }
}

impl Client {
    pub fn new(cfg: Config) -> Self {
        let ms = std::env::var("PAAS_POLL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
        Self { http: http_client(), cfg, poll: Duration::from_millis(ms) }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.cfg.api.trim_end_matches('/'))
        }
    }

    /// Trade the refresh token for new tokens and save them.
    pub async fn refresh(&mut self) -> Result<()> {
        if self.cfg.refresh_token.is_empty() {
            return Err(CliError::NotLoggedIn("Not logged in. Use 'paas login' to log in.".into()));
        }
        let res = self
            .http
            .post(format!("{}/oauth/token", self.cfg.login.trim_end_matches('/')))
            .basic_auth("cf", Some(""))
            .header("accept", "application/json")
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.cfg.refresh_token.as_str()),
            ])
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(CliError::NotLoggedIn(
                "Your session has expired. Use 'paas login' to log in again.".into(),
            ));
        }
        let grant: Grant = res.json().await?;
        self.cfg.access_token = grant.access_token;
        if let Some(rt) = grant.refresh_token {
            self.cfg.refresh_token = rt;
        }
        self.cfg.save()
    }

    pub async fn token(&mut self) -> Result<String> {
        self.cfg.require_login()?;
        if token::expiring(&self.cfg.access_token) {
            self.refresh().await?;
        }
        Ok(self.cfg.access_token.clone())
    }

    fn build(
        &self,
        method: &Method,
        path: &str,
        body: &Body,
        token: &str,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(token)
            .header("accept", "application/json");
        match body {
            Body::None => {}
            Body::Json(j) => req = req.header("content-type", "application/json").body(j.clone()),
            Body::Yaml(y) => req = req.header("content-type", "application/x-yaml").body(y.clone()),
        }
        req
    }

    /// Send, refreshing and retrying once on an invalid token; non-2xx become errors.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<reqwest::Response> {
        let token = self.token().await?;
        let res = self.build(&method, path, &body, &token).send().await?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            self.refresh().await?;
            let token = self.cfg.access_token.clone();
            let res = self.build(&method, path, &body, &token).send().await?;
            return if res.status().is_success() { Ok(res) } else { Err(api_error(res).await) };
        }
        if res.status().is_success() {
            Ok(res)
        } else {
            Err(api_error(res).await)
        }
    }

    /// The answer's body as `T` (an empty body reads as JSON `null`).
    async fn read<T: DeserializeOwned>(res: reqwest::Response) -> Result<T> {
        let text = res.text().await?;
        let text = if text.trim().is_empty() { "null" } else { text.as_str() };
        serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                CliError::Other(format!("the API sent an answer this CLI cannot read: {e}"))
            }
            _ => CliError::Other(format!("the API sent something that is not JSON: {e}")),
        })
    }

    pub async fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        let res = self.send(Method::GET, path, Body::None).await?;
        Self::read(res).await
    }

    pub async fn post<T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let res = self.send(Method::POST, path, Body::json(body)?).await?;
        Self::read(res).await
    }

    pub async fn patch<T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let res = self.send(Method::PATCH, path, Body::json(body)?).await?;
        Self::read(res).await
    }

    /// POST or PATCH answered with a job: the job's URL (`None` when the API answered at once).
    pub async fn send_job(
        &mut self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Option<String>> {
        let res = self.send(method, path, Body::json(body)?).await?;
        Ok(res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned))
    }

    /// DELETE, waiting for the job when the API answers with one.
    pub async fn delete(&mut self, path: &str) -> Result<()> {
        let res = self.send(Method::DELETE, path, Body::None).await?;
        if let Some(loc) =
            res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
        {
            self.wait_job(&loc).await?;
        }
        Ok(())
    }

    /// Every resource of a list, following `pagination.next`.
    pub async fn list<T: DeserializeOwned>(&mut self, path: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(p) = next {
            let page: Page<T> = self.get(&p).await?;
            next = page.next_href().map(str::to_owned);
            out.extend(page.resources);
        }
        Ok(out)
    }

    /// Poll a job until it completes; a failed job is an error with its first detail.
    pub async fn wait_job(&mut self, location: &str) -> Result<()> {
        loop {
            let job: Job = self.get(location).await?;
            match job.state {
                JobState::Complete => return Ok(()),
                JobState::Failed => {
                    let detail = job
                        .errors
                        .into_iter()
                        .map(|e| e.detail)
                        .find(|d| !d.is_empty())
                        .unwrap_or_else(|| "the job failed".into());
                    return Err(CliError::Failed(detail));
                }
                JobState::Processing | JobState::Polling => tokio::time::sleep(self.poll).await,
            }
        }
    }
}

/// `?a=b&c=d` with values encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("?{}", s.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(query(&[("names", "a b,c"), ("x", "1")]), "?names=a+b%2Cc&x=1");
    }
}
