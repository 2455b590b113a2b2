//! Bearer-token verification against the api's RS256 keys.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::Claims;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// One key of `GET /token_keys` (UAA's JWK set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub n: String,
    pub e: String,
    /// PEM of the public key (UAA includes it as `value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Strip the scheme from an `Authorization` value: `bearer x`, `Bearer x`, or a raw token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let h = header.trim();
    if h.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = match h.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => h,
    };
    (!token.is_empty()).then_some(token)
}

enum KeySource {
    Static,
    Url { url: String, client: reqwest::Client },
}

/// Checks signature (RS256 only), expiry, issuer and audience.
pub struct Verifier {
    issuer: String,
    audience: Option<String>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    source: KeySource,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// Don't ask the api for keys more often than this when a token names an unknown key.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);

impl Verifier {
    /// Verify with a fixed key set (the api itself, and tests).
    pub fn with_keys(issuer: impl Into<String>, audience: Option<String>, jwks: &Jwks) -> Self {
        let v = Self {
            issuer: issuer.into(),
            audience,
            keys: RwLock::new(HashMap::new()),
            source: KeySource::Static,
            last_fetch: tokio::sync::Mutex::new(None),
        };
        v.install(jwks);
        v
    }

    /// Verify with the keys published at `jwks_url` (`<api>/token_keys`), fetched on first use
    /// and again when a token names a key not seen yet (key rotation).
    pub fn from_url(
        issuer: impl Into<String>,
        audience: Option<String>,
        jwks_url: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience,
            keys: RwLock::new(HashMap::new()),
            source: KeySource::Url { url: jwks_url.into(), client: reqwest::Client::new() },
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    fn install(&self, jwks: &Jwks) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for k in jwks.keys.iter().filter(|k| k.kty == "RSA") {
            if let Ok(dk) = DecodingKey::from_rsa_components(&k.n, &k.e) {
                keys.insert(k.kid.clone(), dk);
            }
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(kid).cloned()
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let KeySource::Url { url, client } = &self.source else { return Ok(()) };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks: Jwks = client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        self.install(&jwks);
        Ok(())
    }

    /// Verify the value of an `Authorization` header (or a raw token).
    pub async fn verify(&self, authorization: &str) -> Result<Claims, AuthError> {
        let token = bearer_token(authorization).ok_or(AuthError::Missing)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid(format!("algorithm {:?} not accepted", header.alg)));
        }
        let kid = header.kid.unwrap_or_default();
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.refresh().await?;
                self.key(&kid)
                    .ok_or_else(|| AuthError::Invalid(format!("unknown signing key {kid:?}")))?
            }
        };
        self.decode(token, &key)
    }

    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = 0;
        v.set_issuer(&[&self.issuer]);
        match &self.audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&["exp", "iss"]);
        jsonwebtoken::decode::<Claims>(token, key, &v).map(|d| d.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_case_insensitive_or_absent() {
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("bearer "), None);
    }
}
