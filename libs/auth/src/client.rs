//! Client-credentials tokens for platform components calling each other.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum TokenSourceError {
    #[error("token endpoint {url}: {message}")]
    Failed { url: String, message: String },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

/// Fetches and caches a client-credentials token from `<api>/oauth/token`, renewing it a
/// minute before it expires.
pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ClientCredentials {
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            http: reqwest::Client::new(),
            cached: Mutex::new(None),
        }
    }

    /// A valid access token (without the `bearer ` prefix).
    pub async fn token(&self) -> Result<String, TokenSourceError> {
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let fail =
            |message: String| TokenSourceError::Failed { url: self.token_url.clone(), message };
        let res = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !res.status().is_success() {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            return Err(fail(format!("{status}: {body}")));
        }
        let body: TokenResponse = res.json().await.map_err(|e| fail(e.to_string()))?;
        let life = Duration::from_secs(body.expires_in.max(120));
        *cached =
            Some((body.access_token.clone(), Instant::now() + life - Duration::from_secs(60)));
        Ok(body.access_token)
    }

    /// Forget the cached token (after a 401).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
