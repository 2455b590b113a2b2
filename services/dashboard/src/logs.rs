//! `/logs/<app guid>/stream`: the logs service's live stream of one app, as server-sent events
//! of plain lines, filtered by source type (`?sources=APP,RTR`). The logs service decides with
//! the user's own token whether the app's logs may be read (404 otherwise). The same relay
//! serves operators the platform's own sources (`api`, `cell/<id>`, `router/<index>`, ...; see
//! [`crate::admin`]), listed from the logs service's `/api/v1/meta`.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::web::{bearer, guard, json_error};
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    #[serde(default)]
    sources: String,
}

/// One log line as the page shows it.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Line {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    /// Unix time in nanoseconds: the event id, so a reconnecting page resumes after it.
    #[serde(skip)]
    pub time_ns: i64,
    /// `APP/PROC/WEB`, `RTR`, `STG`, ...
    pub source_type: String,
    pub instance: String,
    /// `OUT` or `ERR`.
    pub stream: String,
    pub message: String,
}

/// The source types asked for (upper case); empty means all.
fn wanted(sources: &str) -> BTreeSet<String> {
    sources.split(',').map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty()).collect()
}

/// The lines of one SSE `data:` payload from the logs service that pass the filter.
pub(crate) fn lines(data: &str, wanted: &BTreeSet<String>) -> Vec<Line> {
    let Ok(batch) = serde_json::from_str::<wire::envelope::EnvelopeBatch>(data) else {
        return Vec::new();
    };
    batch
        .batch
        .into_iter()
        .filter_map(|e| {
            let wire::envelope::Message::Log(log) = &e.message else { return None };
            let source_type = e.tags.get("source_type").cloned().unwrap_or_default();
            let family = source_type.split('/').next().unwrap_or("").to_ascii_uppercase();
            if !wanted.is_empty() && !wanted.contains(&family) {
                return None;
            }
            let stream = serde_json::to_value(log.stream)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "OUT".into());
            Some(Line {
                time_ms: e.timestamp / 1_000_000,
                time_ns: e.timestamp,
                source_type,
                instance: e.instance_id.clone(),
                stream,
                message: e.log_text().unwrap_or_default().trim_end().to_owned(),
            })
        })
        .collect()
}

fn valid_guid(g: &str) -> bool {
    !g.is_empty() && g.len() <= 64 && g.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Query(q): Query<StreamQuery>,
) -> Response {
    let (id, _) = match guard(&state, &headers, &Method::GET) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !valid_guid(&app) {
        return json_error(StatusCode::NOT_FOUND, "app not found");
    }
    relay(&state, &headers, &id, &app, wanted(&q.sources), "app not found").await
}

/// Whether `id` can name a source: letters, digits, `-`, `_`, `.` and `/`, at most 128
/// characters, with no `..` (and not `.` alone, which a URL would swallow).
pub(crate) fn valid_source(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && !id.contains("..")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// An app's source id: a guid (`8-4-4-4-12` hex digits).
fn is_guid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The platform's own sources (`api`, `cell/<id>`, `router/<index>`, ...) among the keys of a
/// log-cache `/api/v1/meta` answer: everything but app guids, sorted.
pub(crate) fn platform_sources(meta: &serde_json::Value) -> Vec<String> {
    let Some(m) = meta["meta"].as_object() else { return Vec::new() };
    let set: BTreeSet<&String> = m.keys().filter(|k| !is_guid(k) && valid_source(k)).collect();
    set.into_iter().cloned().collect()
}

/// `source` as one path segment of a logs service URL (`cell/abc` → `cell%2Fabc`); a valid
/// source id has nothing else to encode.
fn path_segment(source: &str) -> String {
    source.replace('/', "%2F")
}

/// The sources the signed-in user (session `id`) may read that are not apps, as the logs
/// service lists them to that user's token.
pub(crate) async fn sources(state: &AppState, id: &str) -> Response {
    let token = match bearer(state, id, None).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let url = format!("{}/api/v1/meta", state.cfg.logs_url.trim_end_matches('/'));
    let res = state.http.get(&url).timeout(Duration::from_secs(5)).bearer_auth(&token).send().await;
    let meta = match res {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
        Ok(r) => {
            tracing::warn!(status = %r.status(), "the logs service refused to list sources");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the logs service is unreachable");
            None
        }
    };
    match meta {
        Some(m) => Json(json!({ "sources": platform_sources(&m) })).into_response(),
        None => json_error(StatusCode::BAD_GATEWAY, "the logs service is unreachable"),
    }
}

/// The logs service's live stream of `source`, read with the token of session `id`, as
/// server-sent events of [`Line`]s whose source type family is `wanted` (all when empty): the
/// last five minutes first, or what came after the `Last-Event-ID` a reconnecting page saw.
/// When the logs service refuses (it answers 404 to whoever may not read), 404 `refused`.
pub(crate) async fn relay(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    source: &str,
    wanted: BTreeSet<String>,
    refused: &str,
) -> Response {
    let token = match bearer(state, id, None).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .map(|ns| ns + 1);
    let since = resume.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64 - 5 * 60 * 1_000_000_000)
            .unwrap_or(0)
    });
    let url = format!(
        "{}/api/v1/stream/{}?envelope_types=LOG&start_time={since}",
        state.cfg.logs_url.trim_end_matches('/'),
        path_segment(source),
    );
    let res = match state.streams.get(&url).bearer_auth(&token).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the logs service is unreachable");
            return json_error(StatusCode::BAD_GATEWAY, "the logs service is unreachable");
        }
    };
    if !res.status().is_success() {
        return json_error(StatusCode::NOT_FOUND, refused);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let mut upstream = res.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = upstream.next().await {
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim_end().strip_prefix("data:") else { continue };
                for l in lines(data.trim_start(), &wanted) {
                    let Ok(ev) = Event::default().id(l.time_ns.to_string()).json_data(&l) else {
                        continue;
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let events = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(Ok::<_, Infallible>);
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_become_filtered_lines() {
        let app = wire::envelope::Envelope::log(
            "g",
            "1",
            "APP/PROC/WEB",
            "<b>hi</b>\n",
            wire::envelope::LogStream::Out,
        );
        let rtr =
            wire::envelope::Envelope::log("g", "0", "RTR", "GET /", wire::envelope::LogStream::Out);
        let data = serde_json::json!({ "batch": [app, rtr] }).to_string();
        let all = lines(&data, &wanted(""));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].message, "<b>hi</b>");
        assert_eq!(all[0].source_type, "APP/PROC/WEB");
        assert_eq!(all[0].instance, "1");
        assert_eq!(all[0].stream, "OUT");
        let only_rtr = lines(&data, &wanted("rtr, stg"));
        assert_eq!(only_rtr.len(), 1);
        assert_eq!(only_rtr[0].source_type, "RTR");
        assert!(lines("not json", &wanted("")).is_empty());
    }

    #[test]
    fn platform_sources_are_what_is_not_an_app_sorted() {
        let meta = json!({ "meta": {
            "router/0": { "count": "3" },
            "6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f50": { "count": "9" },
            "api": { "count": "2" },
            "cell/cell-z1-0": { "count": "1" },
            "6F1C2C3E-8D34-4A9E-9A5E-1C0B2D3E4F51": { "count": "1" },
            "stager": { "count": "1" },
            "paasd": { "count": "1" },
            "bad source!": { "count": "1" },
        }});
        assert_eq!(
            platform_sources(&meta),
            ["api", "cell/cell-z1-0", "paasd", "router/0", "stager"],
            "guids (either case) and ids the stream would refuse are left out"
        );
        assert!(platform_sources(&json!({ "meta": {} })).is_empty());
        assert!(platform_sources(&json!({ "error": "x" })).is_empty());
        assert!(is_guid("6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f50"));
        assert!(!is_guid("6f1c2c3e8d344a9e9a5e1c0b2d3e4f50"), "only the hyphenated form");
        assert!(!is_guid("6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f5g"));
    }

    #[test]
    fn source_ids_are_checked_and_one_path_segment() {
        for ok in ["api", "cell/cell-z1-0", "router/3", "logs", "host.example_1", "a/b/c"] {
            assert!(valid_source(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in
            ["", ".", "..", "cell/../api", "a..b", "api?x=1", "api#x", "a b", "a%2Fb", "ü", &long]
        {
            assert!(!valid_source(bad), "{bad:?}");
        }
        assert!(valid_source(&"a".repeat(128)));
        assert_eq!(path_segment("cell/abc"), "cell%2Fabc");
        assert_eq!(path_segment("api"), "api");
    }
}
