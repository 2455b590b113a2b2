//! Talking back to the api: the claim of a build (`POST`, also the heartbeat), the droplet
//! upload (`PUT`, streamed) and the result (`POST`); the last two retried with back-off, the
//! api treats both as idempotent by build guid.

use std::path::Path;
use std::time::Duration;

use wire::staging::{StagingClaim, StagingResult};

use crate::error::StageError;
use crate::fetch::Api;

const ATTEMPTS: u32 = 6;

/// Runs `attempt` until it succeeds, fails permanently (4xx) or runs out of attempts.
async fn retry<F, Fut>(what: &str, mut attempt: F) -> Result<(), StageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response, StageError>>,
{
    let mut delay = Duration::from_millis(250);
    let mut last = String::new();
    for n in 1..=ATTEMPTS {
        match attempt().await {
            Ok(res) if res.status().is_success() => return Ok(()),
            Ok(res)
                if res.status().is_client_error()
                    && res.status() != reqwest::StatusCode::UNAUTHORIZED =>
            {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                return Err(StageError::platform(format!("{what}: {status}: {body}")));
            }
            Ok(res) => last = format!("status {}", res.status()),
            Err(e) => last = e.to_string(),
        }
        tracing::warn!(attempt = n, error = %last, "{what} failed, retrying");
        if n < ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
        }
    }
    Err(StageError::platform(format!("{what}: {last}")))
}

async fn send(api: &Api, req: reqwest::RequestBuilder) -> Result<reqwest::Response, StageError> {
    let res = req
        .header(reqwest::header::AUTHORIZATION, api.bearer().await?)
        .send()
        .await
        .map_err(|e| StageError::platform(e.to_string()))?;
    if res.status() == reqwest::StatusCode::UNAUTHORIZED {
        api.token.invalidate().await;
    }
    Ok(res)
}

/// `PUT <url>` with the droplet file as a streamed body.
pub async fn upload_droplet(api: &Api, url: &str, tgz: &Path, size: u64) -> Result<(), StageError> {
    retry("droplet upload", || async {
        let file = tokio::fs::File::open(tgz)
            .await
            .map_err(|e| StageError::platform(format!("droplet: {e}")))?;
        let req = api
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::from(file));
        send(api, req).await
    })
    .await
}

/// `POST <url>` with the staging result.
pub async fn complete(api: &Api, url: &str, result: &StagingResult) -> Result<(), StageError> {
    retry("staging completion", || async { send(api, api.http.post(url).json(result)).await }).await
}

/// The api's answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The build is this stager's: stage it (or keep staging it).
    Held,
    /// Another stager has the build, or it is no longer STAGING (or gone): leave it. The
    /// api's words.
    Lost(String),
}

/// `POST <url>` with this stager's claim, once.
pub async fn claim(api: &Api, url: &str, stager_id: &str) -> Result<Claim, StageError> {
    let body = StagingClaim { stager_id: stager_id.to_owned() };
    let res = send(api, api.http.post(url).json(&body)).await?;
    let status = res.status();
    if status.is_success() {
        return Ok(Claim::Held);
    }
    if status == reqwest::StatusCode::CONFLICT || status == reqwest::StatusCode::NOT_FOUND {
        let body = res.text().await.unwrap_or_default();
        return Ok(Claim::Lost(format!("{status}: {body}")));
    }
    Err(StageError::platform(format!("claim: status {status}")))
}
