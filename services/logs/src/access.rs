//! Who may read which source: operators (log-cache's admin scopes) read everything; anyone
//! else reads an app's logs when the api says they may see the app
//! (`GET <api>/internal/v4/log_access/<app guid>`), asked with the reader's own token and
//! cached briefly. Anything else is refused — and a refusal is a 404, as log-cache does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

/// The decision behind every read; a trait so tests can decide without an api.
pub trait Access: Send + Sync + 'static {
    fn may_read<'a>(&'a self, authorization: &'a str, source_id: &'a str) -> BoxFuture<'a, bool>;
}

/// Scopes that read every source, platform components included.
pub const ADMIN_SCOPES: [&str; 5] = [
    auth::SCOPE_LOGS_ADMIN,
    auth::SCOPE_FIREHOSE,
    auth::SCOPE_ADMIN,
    auth::SCOPE_ADMIN_READ_ONLY,
    auth::SCOPE_GLOBAL_AUDITOR,
];

/// The real decision: token verified against the api's keys, app access asked of the api.
pub struct ApiAccess {
    verifier: auth::Verifier,
    api_url: String,
    http: reqwest::Client,
    cache: Mutex<HashMap<(String, String), (bool, Instant)>>,
    allow_ttl: Duration,
    deny_ttl: Duration,
}

impl ApiAccess {
    pub fn new(api_url: &str, verifier: auth::Verifier, cache_ttl: Duration) -> Self {
        Self {
            verifier,
            api_url: api_url.trim_end_matches('/').to_owned(),
            http: kit::http::client(),
            cache: Mutex::new(HashMap::new()),
            allow_ttl: cache_ttl,
            deny_ttl: cache_ttl.min(Duration::from_secs(2)),
        }
    }

    fn cached(&self, key: &(String, String)) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|(_, until)| Instant::now() < *until).map(|(v, _)| *v)
    }

    fn remember(&self, key: (String, String), allowed: bool) {
        let ttl = if allowed { self.allow_ttl } else { self.deny_ttl };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 100_000 {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
        }
        cache.insert(key, (allowed, Instant::now() + ttl));
    }

    async fn ask_api(&self, authorization: &str, app_guid: &str) -> bool {
        let url = format!("{}/internal/v4/log_access/{app_guid}", self.api_url);
        let req = self.http.get(url).header("authorization", authorization);
        match kit::http::propagate(req).send().await {
            Ok(res) => res.status().is_success(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask the api about log access");
                false
            }
        }
    }
}

impl Access for ApiAccess {
    fn may_read<'a>(&'a self, authorization: &'a str, source_id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Ok(claims) = self.verifier.verify(authorization).await else { return false };
            if ADMIN_SCOPES.iter().any(|s| claims.has_scope(s)) {
                return true;
            }
            // Only apps (guids) are readable by their developers; platform sources are not.
            if uuid::Uuid::parse_str(source_id).is_err() {
                return false;
            }
            let key = (claims.jti.clone(), source_id.to_owned());
            if let Some(v) = self.cached(&key) {
                return v;
            }
            let allowed = self.ask_api(authorization, source_id).await;
            self.remember(key, allowed);
            allowed
        })
    }
}
