//! `/logs/<app guid>/stream`: the logs service's live stream of one app, as server-sent events
//! of plain lines, filtered by source type (`?sources=APP,RTR`). The logs service decides with
//! the user's own token whether the app's logs may be read (404 otherwise).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

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
    let token = match bearer(&state, &id, None).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    // The last five minutes first, or what came after the last line a reconnecting page saw.
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
        "{}/api/v1/stream/{app}?envelope_types=LOG&start_time={since}",
        state.cfg.logs_url.trim_end_matches('/')
    );
    let res = match state.streams.get(&url).bearer_auth(&token).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the logs service is unreachable");
            return json_error(StatusCode::BAD_GATEWAY, "the logs service is unreachable");
        }
    };
    if !res.status().is_success() {
        return json_error(StatusCode::NOT_FOUND, "app not found");
    }
    let wanted = wanted(&q.sources);
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
}
