//! `/api/v3/...`: the api as the signed-in user sees it. Reads pass with the session's bearer
//! token; changes need the CSRF header too. Only the status, the content type and the body come
//! back.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::web::{bearer, guard, json_error, Refused};
use crate::AppState;

/// A path under `/v3/` the browser may name: no dot segments, nothing encoded that could turn
/// into one, no empty segments.
pub(crate) fn safe_path(rest: &str) -> bool {
    !rest.is_empty()
        && rest.len() <= 512
        && rest.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && !rest.contains('%')
        && !rest.contains('\\')
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) async fn forward(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (id, _) = match guard(&state, &headers, &method) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !matches!(method, Method::GET | Method::POST | Method::PATCH | Method::PUT | Method::DELETE)
    {
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    if !safe_path(&rest) {
        return json_error(StatusCode::BAD_REQUEST, "bad path");
    }
    let mut url = format!("{}/v3/{rest}", state.api());
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(&q);
    }
    let mut token = match bearer(&state, &id, None).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    for attempt in 0..2 {
        let mut req = kit::http::propagate(state.http.request(method.clone(), &url))
            .bearer_auth(&token)
            .header("accept", "application/json");
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body.clone());
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "the api is unreachable");
                return json_error(StatusCode::BAD_GATEWAY, "the api is unreachable");
            }
        };
        if res.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
            token = match bearer(&state, &id, Some(&token)).await {
                Ok(t) => t,
                Err(r) => return r.into_response(),
            };
            continue;
        }
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(_) => return json_error(StatusCode::BAD_GATEWAY, "the api's answer broke off"),
        };
        let ctype = if ctype.starts_with("application/json") { ctype } else { "text/plain".into() };
        return (status, [(header::CONTENT_TYPE, ctype)], bytes).into_response();
    }
    Refused::SignIn.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_v3_paths_pass() {
        assert!(safe_path("apps"));
        assert!(safe_path("apps/abc-123/actions/start"));
        assert!(safe_path("processes/x/stats"));
        for bad in
            ["", "../internal", "apps/../../x", "apps/./x", "apps//x", "%2e%2e/x", "a\\b", "a b"]
        {
            assert!(!safe_path(bad), "{bad:?}");
        }
    }
}
