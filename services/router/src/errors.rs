//! The router's own error responses, as gorouter gives them:
//! `"<code> <StatusText>: <message>\n"`, text/plain, and an `X-Cf-RouterError` header.
//! [`RouterError`] names each with where it came from; both HTTP paths answer with it.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where a router error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The request: malformed, for no known route, or badly pinned (4xx).
    Client,
    /// The backend failed, answered badly or too late (502, 504).
    Backend,
    /// The router's own state: no instances, or all at their limit (503).
    Internal,
}

/// An answer of the router's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("Request had empty Host header")]
    EmptyHost,
    #[error("Requested route ('{0}') does not exist.")]
    UnknownRoute(String),
    #[error("Invalid X-CF-App-Instance Header")]
    InvalidPin,
    #[error(
        "Requested instance ('{index}') with guid ('{guid}') does not exist for route ('{host}')"
    )]
    UnknownInstance { index: String, guid: String, host: String },
    /// A request whose framing or head is not clear HTTP/1.1 (the connection closes).
    #[error("{0}")]
    Malformed(&'static str),
    /// A request head over the limit (the connection closes).
    #[error("Request Header Fields Too Large")]
    HeadTooLarge,
    #[error("Requested route ('{0}') has no available endpoints.")]
    NoEndpoints(String),
    #[error("Requested route ('{0}') has reached the connection limit.")]
    ConnectionLimit(String),
    #[error("Registered endpoint failed to handle the request.")]
    EndpointFailure,
    #[error("Request timed out.")]
    Timeout,
}

impl RouterError {
    pub fn origin(&self) -> Origin {
        match self {
            Self::EmptyHost
            | Self::UnknownRoute(_)
            | Self::InvalidPin
            | Self::UnknownInstance { .. }
            | Self::Malformed(_)
            | Self::HeadTooLarge => Origin::Client,
            Self::EndpointFailure | Self::Timeout => Origin::Backend,
            Self::NoEndpoints(_) | Self::ConnectionLimit(_) => Origin::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownRoute(_) => StatusCode::NOT_FOUND,
            Self::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NoEndpoints(_) | Self::ConnectionLimit(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::EndpointFailure => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::EmptyHost
            | Self::InvalidPin
            | Self::UnknownInstance { .. }
            | Self::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The `X-Cf-RouterError` value; none for a request refused before routing (gorouter's
    /// HTTP server answers those without one).
    pub fn kind(&self) -> Option<&'static str> {
        Some(match self {
            Self::EmptyHost => "empty_host",
            Self::UnknownRoute(_) | Self::UnknownInstance { .. } => "unknown_route",
            Self::InvalidPin => "invalid_cf_app_instance_header",
            Self::Malformed(_) | Self::HeadTooLarge => return None,
            Self::NoEndpoints(_) => "no_endpoints",
            Self::ConnectionLimit(_) => "Connection Limit Reached",
            Self::EndpointFailure => "endpoint_failure",
            Self::Timeout => "endpoint_failure (request timeout)",
        })
    }

    /// Whether the client connection must close after this answer (its framing is not
    /// trusted any more).
    pub fn closes(&self) -> bool {
        matches!(self, Self::Malformed(_) | Self::HeadTooLarge)
    }

    /// As a response of the hyper path.
    pub fn response(&self) -> Response {
        let mut res = router_error(self.status(), self.kind().unwrap_or(""), &self.to_string());
        if self.closes() {
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }

    /// As bytes of the HTTP/1.1 path, with `Connection: close` unless `keep`.
    pub fn write_h1(&self, out: &mut Vec<u8>, keep: bool) {
        let status = self.status();
        let body = error_body(status, &self.to_string());
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
        );
        if let Some(kind) = self.kind() {
            head.push_str("x-cf-routererror: ");
            head.push_str(kind);
            head.push_str("\r\n");
        }
        head.push_str("content-length: ");
        head.push_str(&body.len().to_string());
        head.push_str(if keep && !self.closes() {
            "\r\n\r\n"
        } else {
            "\r\nconnection: close\r\n\r\n"
        });
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
    }
}

/// The text body of a router error.
pub fn error_body(status: StatusCode, message: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    format!("{} {reason}: {message}\n", status.as_u16())
}

/// Build a router error response (without `X-Cf-RouterError` when `kind` is empty).
pub fn router_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = error_body(status, message);
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if !kind.is_empty() {
        if let Ok(v) = HeaderValue::from_str(kind) {
            h.insert("x-cf-routererror", v);
        }
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

    #[test]
    fn each_error_has_its_origin_status_and_kind() {
        let host = || "a.example.com".to_owned();
        let table = [
            (RouterError::EmptyHost, Origin::Client, 400, Some("empty_host")),
            (RouterError::UnknownRoute(host()), Origin::Client, 404, Some("unknown_route")),
            (RouterError::InvalidPin, Origin::Client, 400, Some("invalid_cf_app_instance_header")),
            (RouterError::Malformed("x"), Origin::Client, 400, None),
            (RouterError::HeadTooLarge, Origin::Client, 431, None),
            (RouterError::NoEndpoints(host()), Origin::Internal, 503, Some("no_endpoints")),
            (
                RouterError::ConnectionLimit(host()),
                Origin::Internal,
                503,
                Some("Connection Limit Reached"),
            ),
            (RouterError::EndpointFailure, Origin::Backend, 502, Some("endpoint_failure")),
            (
                RouterError::Timeout,
                Origin::Backend,
                504,
                Some("endpoint_failure (request timeout)"),
            ),
        ];
        for (e, origin, status, kind) in table {
            assert_eq!(
                (e.origin(), e.status().as_u16(), e.kind()),
                (origin, status, kind),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_http1_path_writes_the_same_answer() {
        let mut out = Vec::new();
        RouterError::EndpointFailure.write_h1(&mut out, true);
        let body = "502 Bad Gateway: Registered endpoint failed to handle the request.\n";
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            format!(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 x-cf-routererror: endpoint_failure\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        );
        let mut out = Vec::new();
        RouterError::Malformed("both Content-Length and Transfer-Encoding")
            .write_h1(&mut out, true);
        let out = String::from_utf8(out).expect("utf8");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("connection: close\r\n") && !out.contains("x-cf-routererror"));
        assert!(out.ends_with("400 Bad Request: both Content-Length and Transfer-Encoding\n"));
    }
}
