//! Talking to the API: bearer tokens refreshed before they expire (and once more after a
//! `CF-InvalidAuthToken`), CF v3 errors turned into [`CliError`]s, lists followed through
//! `pagination.next`, jobs polled to the end.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::Value;

use crate::config::Config;
use crate::error::CliError;

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// The payload of a JWT, unverified (the CLI only reads its own token).
pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether the token expires within a minute (or cannot be read).
pub fn expiring(token: &str) -> bool {
    claims(token)
        .and_then(|c| c.get("exp").and_then(Value::as_i64))
        .is_none_or(|exp| exp < now() + 60)
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Yaml(String),
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

/// The error of a non-2xx answer.
pub async fn api_error(res: reqwest::Response) -> CliError {
    let status = res.status().as_u16();
    let request_id =
        res.headers().get("x-vcap-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
        let detail = v["errors"]
            .as_array()
            .map(|all| {
                all.iter().filter_map(|e| e["detail"].as_str()).collect::<Vec<_>>().join("\n")
            })
            .unwrap_or_default();
        return CliError::Api {
            status,
            title: e["title"].as_str().unwrap_or_default().to_owned(),
            detail,
            request_id,
        };
    }
    if let Some(d) = v.get("error_description").and_then(Value::as_str) {
        return CliError::Api {
            status,
            title: v["error"].as_str().unwrap_or_default().to_owned(),
            detail: d.to_owned(),
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
        let v: Value = res.json().await?;
        self.cfg.access_token = v["access_token"].as_str().unwrap_or_default().to_owned();
        if let Some(rt) = v["refresh_token"].as_str() {
            self.cfg.refresh_token = rt.to_owned();
        }
        self.cfg.save()
    }

    pub async fn token(&mut self) -> Result<String> {
        self.cfg.require_login()?;
        if expiring(&self.cfg.access_token) {
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
            Body::Json(v) => req = req.json(v),
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

    async fn json(res: reqwest::Response) -> Result<Value> {
        let text = res.text().await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| CliError::Other(format!("the API sent something that is not JSON: {e}")))
    }

    pub async fn get(&mut self, path: &str) -> Result<Value> {
        let res = self.send(Method::GET, path, Body::None).await?;
        Self::json(res).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Result<Value> {
        let res = self.send(Method::POST, path, Body::Json(body)).await?;
        Self::json(res).await
    }

    pub async fn patch(&mut self, path: &str, body: Value) -> Result<Value> {
        let res = self.send(Method::PATCH, path, Body::Json(body)).await?;
        Self::json(res).await
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
    pub async fn list(&mut self, path: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(p) = next {
            let page = self.get(&p).await?;
            if let Some(r) = page["resources"].as_array() {
                out.extend(r.iter().cloned());
            }
            next = page["pagination"]["next"]["href"].as_str().map(str::to_owned);
        }
        Ok(out)
    }

    /// Poll a job until it completes; a failed job is an error with its first detail.
    pub async fn wait_job(&mut self, location: &str) -> Result<()> {
        loop {
            let job = self.get(location).await?;
            match job["state"].as_str() {
                Some("COMPLETE") => return Ok(()),
                Some("FAILED") => {
                    let detail =
                        job["errors"][0]["detail"].as_str().unwrap_or("the job failed").to_owned();
                    return Err(CliError::Failed(detail));
                }
                _ => tokio::time::sleep(self.poll).await,
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

    fn jwt(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b("{\"alg\":\"RS256\"}"), b(payload))
    }

    #[test]
    fn tokens_near_expiry_are_refreshed() {
        let soon = jwt(&format!("{{\"exp\": {}}}", now() + 30));
        let later = jwt(&format!("{{\"exp\": {}, \"user_name\": \"ann\"}}", now() + 3600));
        assert!(expiring(&soon));
        assert!(!expiring(&later));
        assert!(expiring("garbage"));
        assert_eq!(claims(&later).expect("claims")["user_name"], "ann");
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(query(&[("names", "a b,c"), ("x", "1")]), "?names=a+b%2Cc&x=1");
    }
}
