//! Route services. A route bound to a route service sends each
//! request to that service first, with the URL it was for (`X-CF-Forwarded-Url`) and a
//! signature only routers can make (`X-CF-Proxy-Signature`, `X-CF-Proxy-Metadata`). The service
//! does its work and sends the request on to the forwarded URL, through a router again, which
//! checks the signature (the secret, not expired, the same route) and forwards it to the app.
//!
//! The signature is gorouter's: the JSON `{"forwarded_url","requested_time"}` sealed with
//! AES-128-GCM under a key derived from the shared secret (PBKDF2-HMAC-SHA256, 100 001 rounds,
//! no salt), the nonce in the metadata header; so routers of either kind that share the
//! secret accept each other's requests. A second, decrypt-only secret lets operators rotate.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::errors::router_error;
use crate::proxy::{self, Ctx, Proxy, MAX_ATTEMPTS};
use crate::table::{Endpoint, Pool, Table};
use crate::{access, websocket};

pub const SIGNATURE: &str = "x-cf-proxy-signature";
pub const METADATA: &str = "x-cf-proxy-metadata";
pub const FORWARDED_URL: &str = "x-cf-forwarded-url";

const PBKDF2_ROUNDS: u32 = 100_001;

/// Settings of route services (part of the router's configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Shared by every router; empty: route services are off (502 for bound routes).
    pub secret: String,
    /// An older secret still accepted, never used to sign (for rotation).
    pub secret_decrypt_only: String,
    /// How long a signature stays valid.
    pub timeout: Duration,
    /// `https` (true) or `http` as the scheme of the forwarded URL.
    pub recommend_https: bool,
    /// PEM file of certificates trusted for route services besides the web roots.
    pub ca_file: String,
}

/// Signing, checking and the client for route services.
pub struct RouteServices {
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
    timeout: Duration,
    scheme: &'static str,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("route service request expired")]
    Expired,
    #[error("{0}")]
    Bad(String),
}

#[derive(Serialize, Deserialize)]
struct Contents {
    forwarded_url: String,
    #[serde(with = "time::serde::rfc3339")]
    requested_time: time::OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct Metadata {
    /// Standard base64, as Go writes a byte slice in JSON.
    nonce: String,
}

fn key(secret: &str) -> LessSafeKey {
    let mut raw = [0u8; 16];
    let rounds = NonZeroU32::new(PBKDF2_ROUNDS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        b"",
        secret.as_bytes(),
        &mut raw,
    );
    // A 16-byte key is what AES-128 takes, so this cannot fail.
    let unbound = UnboundKey::new(&aead::AES_128_GCM, &raw).unwrap_or_else(|_| unreachable!());
    LessSafeKey::new(unbound)
}

impl RouteServices {
    /// `None` when no secret is configured: route services are off.
    pub fn new(s: &Settings) -> Result<Option<Arc<Self>>, String> {
        if s.secret.is_empty() {
            return Ok(None);
        }
        let tls = kit::tls::client_config(&s.ca_file, "route_services_ca_file")?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(websocket::DIAL_TIMEOUT));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(Some(Arc::new(Self {
            current: key(&s.secret),
            previous: Some(&s.secret_decrypt_only).filter(|p| !p.is_empty()).map(|p| key(p)),
            timeout: s.timeout,
            scheme: if s.recommend_https { "https" } else { "http" },
            client,
        })))
    }

    /// The URL the route service is to send the request on to: scheme, host (no port),
    /// path and query as the client asked.
    pub fn forwarded_url(&self, host: &str, uri: &Uri) -> String {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{}://{host}{target}", self.scheme)
    }

    /// The signature and metadata headers for a request to `forwarded_url` made `now`.
    pub fn sign(&self, forwarded_url: &str, now: time::OffsetDateTime) -> (String, String) {
        let contents = Contents { forwarded_url: forwarded_url.to_owned(), requested_time: now };
        let mut sealed = serde_json::to_vec(&contents).unwrap_or_default();
        let nonce: [u8; 12] = rand::random();
        // Sealing fails only for inputs beyond GCM's length limit (64 GiB).
        let _ = self.current.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        );
        let b64 = &base64::engine::general_purpose::STANDARD;
        let url = &base64::engine::general_purpose::URL_SAFE;
        let meta = Metadata { nonce: b64.encode(nonce) };
        (url.encode(sealed), url.encode(serde_json::to_vec(&meta).unwrap_or_default()))
    }

    /// The forwarded URL of a valid signature.
    pub fn verify(
        &self,
        signature: &str,
        metadata: &str,
        now: time::OffsetDateTime,
    ) -> Result<String, Invalid> {
        let url = &base64::engine::general_purpose::URL_SAFE;
        let bad = |what: &str| Invalid::Bad(what.to_owned());
        if metadata.is_empty() {
            return Err(bad("No metadata found"));
        }
        let meta = url.decode(metadata).map_err(|_| bad("metadata is not base64"))?;
        let meta: Metadata = serde_json::from_slice(&meta).map_err(|_| bad("bad metadata"))?;
        let nonce = base64::engine::general_purpose::STANDARD
            .decode(meta.nonce)
            .map_err(|_| bad("bad nonce"))?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad("incorrect nonce length"))?;
        let sealed = url.decode(signature).map_err(|_| bad("signature is not base64"))?;
        let open = |k: &LessSafeKey| {
            let mut buf = sealed.clone();
            let plain = k
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
                .ok()?;
            serde_json::from_slice::<Contents>(plain).ok()
        };
        let contents = open(&self.current)
            .or_else(|| self.previous.as_ref().and_then(open))
            .ok_or_else(|| bad("cipher: message authentication failed"))?;
        let age = now - contents.requested_time;
        if age > self.timeout {
            return Err(Invalid::Expired);
        }
        Ok(contents.forwarded_url)
    }
}

/// Where a request of a route goes.
pub enum Via {
    /// To the app: the route has no route service, or the request comes back from it.
    App,
    /// To the route service at this URL.
    Service(Arc<str>),
    /// Answered by the router.
    Answer(Response),
}

/// Decide for a request of `pool` (found in `table` for `host`).
pub fn decide(
    p: &Proxy,
    table: &Table,
    pool: &Arc<Pool>,
    headers: &HeaderMap,
    websocket: bool,
) -> Via {
    let Some(url) = pool.route_service_url.clone() else { return Via::App };
    let Some(rs) = &p.route_services else {
        return Via::Answer(router_error(
            StatusCode::BAD_GATEWAY,
            "route_service_unsupported",
            "Support for route services is disabled.",
        ));
    };
    if websocket {
        return Via::Answer(router_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "route_service_unsupported",
            "Websocket requests are not supported for routes bound to Route Services.",
        ));
    }
    let text = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let signature = text(SIGNATURE);
    if signature.is_empty() {
        return Via::Service(url);
    }
    let refuse = |status: StatusCode, kind: &str, why: &str| {
        let message = format!("Failed to validate Route Service Signature: {why}");
        tracing::info!(reason = %why, "route service signature refused");
        Via::Answer(router_error(status, kind, &message))
    };
    match rs.verify(signature, text(METADATA), time::OffsetDateTime::now_utc()) {
        Err(e @ Invalid::Expired) => {
            refuse(StatusCode::GATEWAY_TIMEOUT, "expired_route_service_signature", &e.to_string())
        }
        Err(e) => {
            refuse(StatusCode::BAD_GATEWAY, "invalid_route_service_signature", &e.to_string())
        }
        Ok(forwarded) => {
            let same = forwarded.parse::<Uri>().ok().and_then(|u| {
                let found = table.lookup(u.host()?, u.path())?;
                Some(Arc::ptr_eq(&found, pool))
            });
            if same == Some(true) {
                Via::App
            } else {
                let why = format!(
                    "route service forwarded URL {forwarded} does not match the route of this request"
                );
                refuse(StatusCode::BAD_GATEWAY, "invalid_route_service_signature", &why)
            }
        }
    }
}

/// Send the request to the route service at `url` and stream its answer back.
pub async fn forward(
    p: &Proxy,
    url: &str,
    ctx: &Ctx,
    parts: &axum::http::request::Parts,
    body: Incoming,
    pool: &Pool,
) -> Response {
    let Some(rs) = p.route_services.as_ref() else {
        return router_error(
            StatusCode::BAD_GATEWAY,
            "route_service_unsupported",
            "Support for route services is disabled.",
        );
    };
    let target: Option<(Uri, HeaderValue)> = url.parse::<Uri>().ok().and_then(|u| {
        let host = HeaderValue::from_str(u.authority()?.as_str()).ok()?;
        Some((u, host))
    });
    let Some((target, authority)) = target else {
        tracing::warn!(route_service_url = %url, "route service URL does not parse");
        return router_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "route_service_failure",
            "Route service request failed.",
        );
    };
    let forwarded = rs.forwarded_url(&ctx.host, &parts.uri);
    let (signature, metadata) = rs.sign(&forwarded, time::OffsetDateTime::now_utc());
    // What the access line shows: the route's app, the route service as the backend.
    let shown = Endpoint {
        addr: authority.to_str().unwrap_or_default().to_owned(),
        app: pool.endpoints.first().map(|e| e.app.clone()).unwrap_or_default(),
        instance_id: String::new(),
        index: String::new(),
        updated: Instant::now(),
        heard: Default::default(),
        ttl: Duration::ZERO,
        least_connection: false,
        route_service_url: None,
        http2: false,
        zone: None,
        inflight: Default::default(),
    };
    let retryable = proxy::bodiless(&parts.headers);
    let mut body = Some(body);
    for _ in 0..MAX_ATTEMPTS {
        let b = match body.take() {
            Some(b) => Body::new(b),
            None if retryable => Body::empty(),
            None => break,
        };
        let mut out = proxy::forwarded(&parts.method, &parts.uri, &parts.headers, ctx, b);
        *out.uri_mut() = target.clone();
        let h = out.headers_mut();
        h.insert(header::HOST, authority.clone());
        for (k, v) in [(SIGNATURE, &signature), (METADATA, &metadata), (FORWARDED_URL, &forwarded)]
        {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(k, v);
            }
        }
        let waited = Instant::now();
        let res = tokio::time::timeout(p.request_timeout, rs.client.request(out)).await;
        let ns = u64::try_from(waited.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ctx.backend_ns.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        match res {
            Ok(Ok(res)) => {
                let res = res.map(Body::new);
                p.metrics.router_latency.observe(ctx.times().1.as_secs_f64());
                let sent = res
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                access::log(p, parts, ctx, &shown, res.status(), sent, ctx.times());
                return res;
            }
            Ok(Err(e)) if e.is_connect() => {
                tracing::warn!(route_service = %shown.addr, error = %e, "route service connection failed");
            }
            Ok(Err(e)) => {
                tracing::warn!(route_service = %shown.addr, error = %e, "route service failed");
                break;
            }
            Err(_) => {
                return router_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "endpoint_failure (request timeout)",
                    "Request timed out.",
                );
            }
        }
    }
    router_error(
        StatusCode::BAD_GATEWAY,
        "endpoint_failure",
        "Registered endpoint failed to handle the request.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(secret: &str, previous: &str) -> Arc<RouteServices> {
        let s = Settings {
            secret: secret.into(),
            secret_decrypt_only: previous.into(),
            timeout: Duration::from_secs(60),
            recommend_https: true,
            ca_file: String::new(),
        };
        RouteServices::new(&s).expect("settings").expect("on")
    }

    #[test]
    fn signatures_verify_until_they_expire_and_only_under_the_secret() {
        let rs = services("s3cret", "");
        let now = time::OffsetDateTime::now_utc();
        let url = rs.forwarded_url("app.example.com", &"/a/b?c=d".parse().expect("uri"));
        assert_eq!(url, "https://app.example.com/a/b?c=d");
        let (sig, meta) = rs.sign(&url, now);
        assert_eq!(rs.verify(&sig, &meta, now + Duration::from_secs(59)), Ok(url.clone()));
        assert_eq!(rs.verify(&sig, &meta, now + Duration::from_secs(61)), Err(Invalid::Expired));
        // Another secret, a changed byte, no metadata: refused.
        let other = services("other", "");
        assert!(matches!(other.verify(&sig, &meta, now), Err(Invalid::Bad(_))));
        let mut forged = base64::engine::general_purpose::URL_SAFE.decode(&sig).expect("b64");
        forged[0] ^= 1;
        let forged = base64::engine::general_purpose::URL_SAFE.encode(forged);
        assert!(matches!(rs.verify(&forged, &meta, now), Err(Invalid::Bad(_))));
        assert_eq!(rs.verify(&sig, "", now), Err(Invalid::Bad("No metadata found".into())));
        // Rotation: a router with the new secret and the old one decrypt-only accepts both.
        let rotated = services("new", "s3cret");
        assert_eq!(rotated.verify(&sig, &meta, now), Ok(url));
    }

    #[test]
    fn the_headers_have_gorouters_shape() {
        let rs = services("s3cret", "");
        let (sig, meta) = rs.sign("https://a.example.com/", time::OffsetDateTime::now_utc());
        let url = &base64::engine::general_purpose::URL_SAFE;
        let meta: serde_json::Value =
            serde_json::from_slice(&url.decode(meta).expect("base64url")).expect("json");
        let nonce = meta["nonce"].as_str().expect("nonce is a string");
        let nonce = base64::engine::general_purpose::STANDARD.decode(nonce).expect("std base64");
        assert_eq!(nonce.len(), 12);
        // Sealed JSON plus the 16-byte tag.
        let sealed = url.decode(sig).expect("base64url");
        let key = key("s3cret");
        let mut buf = sealed.clone();
        let nonce: [u8; 12] = nonce.try_into().expect("12");
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .expect("opens");
        let contents: serde_json::Value = serde_json::from_slice(plain).expect("json");
        assert_eq!(contents["forwarded_url"], "https://a.example.com/");
        let t = contents["requested_time"].as_str().expect("time");
        assert!(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
        );
    }

    #[test]
    fn without_a_secret_route_services_are_off() {
        let s = Settings {
            secret: String::new(),
            secret_decrypt_only: String::new(),
            timeout: Duration::from_secs(60),
            recommend_https: true,
            ca_file: String::new(),
        };
        assert!(RouteServices::new(&s).expect("settings").is_none());
    }
}
