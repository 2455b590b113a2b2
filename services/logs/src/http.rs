//! The read API, compatible with log-cache (`/api/v1/info`, `/api/v1/read/<source>`,
//! `/api/v1/meta`), plus a live stream (server-sent events) that subscribes to new envelopes
//! before it replays history, so nothing falls between the two.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt as _};
use tokio_stream::wrappers::BroadcastStream;
use wire::envelope::{Envelope, EnvelopeBatch, EnvelopeType, ReadResponse};

use crate::access::Access;
use crate::store::{Query, Store};

/// Most envelopes one read returns (log-cache's limit).
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

#[derive(Clone)]
pub struct Http {
    pub store: Arc<Store>,
    pub access: Arc<dyn Access>,
}

pub fn routes(state: Http) -> Router {
    Router::new()
        .route("/api/v1/info", get(|| async { Json(serde_json::json!({"version": "2.11.0"})) }))
        .route("/api/v1/read/{source}", get(read))
        .route("/api/v1/stream/{source}", get(stream))
        .route("/api/v1/meta", get(meta))
        .with_state(state)
}

/// log-cache answers 404 to anyone who may not read, so nothing leaks.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "not found"}))).into_response()
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": msg}))).into_response()
}

fn authorization(headers: &HeaderMap) -> &str {
    headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Parse the query parameters of a read; `envelope_types` may repeat.
pub fn parse_query(raw: Option<&str>) -> Result<Query, String> {
    let mut q = Query { limit: DEFAULT_LIMIT, ..Default::default() };
    let int = |k: &str, v: &str| v.parse::<i64>().map_err(|_| format!("{k} must be an integer"));
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "start_time" => q.start_time = Some(int(&k, &v)?),
            "end_time" => q.end_time = Some(int(&k, &v)?),
            "limit" => {
                let n = int(&k, &v)?;
                if !(1..=MAX_LIMIT as i64).contains(&n) {
                    return Err(format!("limit must be between 1 and {MAX_LIMIT}"));
                }
                q.limit = n as usize;
            }
            "descending" => q.descending = v == "true" || v == "1",
            "envelope_types" | "envelope_type" => {
                for t in v.split(',').filter(|t| !t.is_empty()) {
                    let ty = EnvelopeType::parse(t)
                        .ok_or_else(|| format!("unknown envelope type {t:?}"))?;
                    q.types.push(ty);
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

async fn read(
    State(s): State<Http>,
    Path(source): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !s.access.may_read(authorization(&headers), &source).await {
        return not_found();
    }
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let batch = s.store.read(&source, &q).iter().map(|e| Envelope::clone(e)).collect();
    Json(ReadResponse { envelopes: EnvelopeBatch { batch } }).into_response()
}

async fn meta(State(s): State<Http>, headers: HeaderMap) -> Response {
    let auth = authorization(&headers);
    let mut out = serde_json::Map::new();
    for (source, m) in s.store.meta() {
        if !s.access.may_read(auth, &source).await {
            continue;
        }
        out.insert(
            source,
            serde_json::json!({
                "count": m.count.to_string(),
                "expired": m.expired.to_string(),
                "oldestTimestamp": m.oldest.to_string(),
                "newestTimestamp": m.newest.to_string(),
            }),
        );
    }
    Json(serde_json::json!({ "meta": out })).into_response()
}

fn event(env: &Envelope) -> Event {
    let batch = EnvelopeBatch { batch: vec![env.clone()] };
    Event::default().data(serde_json::to_string(&batch).unwrap_or_default())
}

async fn stream(
    State(s): State<Http>,
    Path(source): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !s.access.may_read(authorization(&headers), &source).await {
        return not_found();
    }
    let mut q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    // Live first, then history: whatever arrives meanwhile is in one or the other (or both,
    // and then the live copy is skipped).
    let live = s.store.subscribe();
    q.descending = true;
    let mut history = s.store.read(&source, &q);
    history.reverse();
    Sse::new(merged(source, q.types, history, live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
        .into_response()
}

fn merged(
    source: String,
    types: Vec<EnvelopeType>,
    history: Vec<Arc<Envelope>>,
    live: tokio::sync::broadcast::Receiver<Arc<Envelope>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let seen: HashSet<usize> = history.iter().map(|e| Arc::as_ptr(e) as usize).collect();
    let replay = futures::stream::iter(history.into_iter().map(|e| Ok(event(&e))));
    let live = BroadcastStream::new(live).filter_map(move |item| {
        let out = match item {
            Ok(env)
                if env.source_id == source
                    && !seen.contains(&(Arc::as_ptr(&env) as usize))
                    && (types.is_empty() || types.contains(&env.envelope_type())) =>
            {
                Some(Ok(event(&env)))
            }
            Ok(_) => None,
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Some(Ok(Event::default().event("lagged").data(n.to_string())))
            }
        };
        futures::future::ready(out)
    });
    replay.chain(live)
}
