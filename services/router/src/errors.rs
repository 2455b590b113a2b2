//! The router's own error responses, as gorouter gives them:
//! `"<code> <StatusText>: <message>\n"`, text/plain, and an `X-Cf-RouterError` header.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The text body of a router error.
pub fn error_body(status: StatusCode, message: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    format!("{} {reason}: {message}\n", status.as_u16())
}

/// Build a router error response.
pub fn router_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = error_body(status, message);
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(kind) {
        h.insert("x-cf-routererror", v);
    }
    res
}

/// The host a request is for, lowercased and without a port.
pub fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let raw = uri.host().or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))?;
    let host = raw.rsplit_once(':').map_or(raw, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            raw
        }
    });
    let host = host.trim().to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_ports_and_case() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("My-App.Apps.Localhost:8080"));
        let uri: axum::http::Uri = "/x".parse().expect("uri");
        assert_eq!(request_host(&h, &uri).as_deref(), Some("my-app.apps.localhost"));
        assert_eq!(request_host(&HeaderMap::new(), &uri), None);
    }

    #[tokio::test]
    async fn errors_have_the_gorouter_shape() {
        let res = router_error(
            StatusCode::NOT_FOUND,
            "unknown_route",
            "Requested route ('nope.apps.localhost') does not exist.",
        );
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()["x-cf-routererror"], "unknown_route");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.expect("body");
        assert_eq!(
            &body[..],
            b"404 Not Found: Requested route ('nope.apps.localhost') does not exist.\n"
        );
    }
}
