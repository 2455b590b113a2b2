//! The client side of the Open Service Broker API v2.17: every request to a broker carries
//! basic auth, `X-Broker-API-Version: 2.17` and `X-Broker-API-Originating-Identity` (the user
//! on whose behalf it is made), and waits at most `broker_timeout_secs`. Answers are sorted
//! into what OSBAPI allows: done, accepted (an operation to poll), gone, or a failure carrying
//! the broker's own description.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::store::brokers::Broker;
use crate::AppState;

pub const API_VERSION: &str = "2.17";

/// How a broker answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200 or 201: done, with the body.
    Done(Value),
    /// 202: accepted; the operation to poll with, if the broker named one.
    Accepted(Option<String>),
    /// 410 Gone (to a delete: already gone).
    Gone,
}

/// Why a request to a broker failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No answer in time, or no connection: the broker may have done the work (for a
    /// provision or a bind this calls for orphan mitigation).
    Unreachable(String),
    /// An answer that is not valid (bad JSON, an unexpected status) after the broker may have
    /// done the work.
    BadResponse(String),
    /// The broker refused (4xx) with its description; nothing was done.
    Rejected { status: u16, error: String, description: String },
    /// The broker failed (5xx) with its description; it may have done part of the work.
    Failed { status: u16, description: String },
}

impl Failure {
    /// Whether the broker may hold something it made before the failure (OSBAPI's orphan
    /// mitigation: a timeout, a 5xx, a 201 or 200 with a bad body).
    pub fn needs_cleanup(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// What users read (a last operation's description, a job's error).
    pub fn describe(&self, broker: &str) -> String {
        match self {
            Self::Unreachable(why) => {
                format!("The service broker '{broker}' did not answer: {why}")
            }
            Self::BadResponse(why) => {
                format!("The service broker '{broker}' returned an invalid response: {why}")
            }
            Self::Rejected { status, error, description } => {
                let what = if error.is_empty() { String::new() } else { format!(" {error}") };
                format!("The service broker '{broker}' rejected the request ({status}{what}): {description}")
            }
            Self::Failed { status, description } => {
                format!("The service broker '{broker}' failed ({status}): {description}")
            }
        }
    }

    pub fn into_error(self, broker: &str) -> ApiError {
        ApiError::Broker(self.describe(broker))
    }
}

/// A `last_operation` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// `in progress`, `succeeded` or `failed`; `gone` for a 410.
    pub state: String,
    pub description: String,
    pub retry_after: Option<Duration>,
}

/// One request to `broker` at `path` (with `query`), on behalf of `user` (a user guid;
/// empty: the platform).
pub async fn call(
    s: &AppState,
    broker: &Broker,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
    user: &str,
) -> Result<(u16, Value, Option<Duration>), Failure> {
    let url = format!("{}{path}", broker.url.trim_end_matches('/'));
    let mut req = s
        .http
        .request(method, url)
        .basic_auth(&broker.username, Some(&broker.password))
        .header("X-Broker-API-Version", API_VERSION)
        .header("X-Broker-API-Request-Identity", uuid::Uuid::new_v4().to_string())
        .timeout(Duration::from_secs(s.config.broker_timeout_secs.max(1)))
        .query(query);
    if !user.is_empty() {
        let id =
            base64::engine::general_purpose::STANDARD.encode(json!({"user_id": user}).to_string());
        req = req.header("X-Broker-API-Originating-Identity", format!("cloudfoundry {id}"));
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.map_err(|e| {
        if e.is_timeout() {
            Failure::Unreachable(format!(
                "no answer within {} seconds",
                s.config.broker_timeout_secs
            ))
        } else {
            Failure::Unreachable(e.without_url().to_string())
        }
    })?;
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = res.text().await.map_err(|e| Failure::Unreachable(e.to_string()))?;
    let parsed: Option<Value> = if text.trim().is_empty() {
        Some(json!({}))
    } else {
        serde_json::from_str::<Value>(&text).ok().filter(Value::is_object)
    };
    let described = |v: &Option<Value>| {
        v.as_ref()
            .and_then(|v| v.get("description"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("status {status}"))
    };
    match status {
        200..=299 => match parsed {
            Some(v) => Ok((status, v, retry_after)),
            None => Err(Failure::BadResponse(format!(
                "status {status} with a body that is not a JSON object"
            ))),
        },
        400..=499 => Err(Failure::Rejected {
            status,
            error: parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            description: described(&parsed),
        }),
        _ => Err(Failure::Failed { status, description: described(&parsed) }),
    }
}

/// Sort a 2xx or 410 of a provision, update, deprovision, bind or unbind.
fn answer(
    r: Result<(u16, Value, Option<Duration>), Failure>,
    gone_ok: bool,
) -> Result<Answer, Failure> {
    match r {
        Ok((202, v, _)) => {
            Ok(Answer::Accepted(v.get("operation").and_then(Value::as_str).map(str::to_owned)))
        }
        Ok((200 | 201, v, _)) => Ok(Answer::Done(v)),
        Ok((status, ..)) => Err(Failure::BadResponse(format!("unexpected status {status}"))),
        Err(Failure::Rejected { status: 410, .. }) if gone_ok => Ok(Answer::Gone),
        Err(e) => Err(e),
    }
}

/// `GET /v2/catalog`.
pub async fn catalog(s: &AppState, broker: &Broker, user: &str) -> Result<Value, Failure> {
    match call(s, broker, Method::GET, "/v2/catalog", &[], None, user).await? {
        (200, v, _) => Ok(v),
        (status, ..) => Err(Failure::BadResponse(format!("unexpected status {status}"))),
    }
}

/// `PUT|PATCH|DELETE /v2/service_instances/:id` (and bindings below it) with
/// `accepts_incomplete=true`.
pub async fn instance_op(
    s: &AppState,
    broker: &Broker,
    method: Method,
    path: &str,
    extra_query: &[(&str, &str)],
    body: Option<&Value>,
    user: &str,
) -> Result<Answer, Failure> {
    let mut q = vec![("accepts_incomplete", "true")];
    q.extend_from_slice(extra_query);
    let gone_ok = method == Method::DELETE;
    answer(call(s, broker, method, path, &q, body, user).await, gone_ok)
}

/// `GET <path>/last_operation[?operation=...]`.
pub async fn last_operation(
    s: &AppState,
    broker: &Broker,
    path: &str,
    operation: &str,
    query: &[(&str, &str)],
) -> Result<Progress, Failure> {
    let mut q: Vec<(&str, &str)> = query.to_vec();
    if !operation.is_empty() {
        q.push(("operation", operation));
    }
    let p = format!("{path}/last_operation");
    match call(s, broker, Method::GET, &p, &q, None, "").await {
        Ok((_, v, retry_after)) => {
            let state = v.get("state").and_then(Value::as_str).unwrap_or("").to_owned();
            if !["in progress", "succeeded", "failed"].contains(&state.as_str()) {
                return Err(Failure::BadResponse(format!("last_operation state '{state}'")));
            }
            Ok(Progress {
                state,
                description: v.get("description").and_then(Value::as_str).unwrap_or("").to_owned(),
                retry_after,
            })
        }
        Err(Failure::Rejected { status: 410, .. }) => {
            Ok(Progress { state: "gone".into(), description: String::new(), retry_after: None })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_as_osbapi_says() {
        assert_eq!(
            answer(Ok((202, json!({"operation": "op"}), None)), false),
            Ok(Answer::Accepted(Some("op".into())))
        );
        assert_eq!(answer(Ok((201, json!({}), None)), false), Ok(Answer::Done(json!({}))));
        let gone =
            || Failure::Rejected { status: 410, error: String::new(), description: "x".into() };
        assert_eq!(answer(Err(gone()), true), Ok(Answer::Gone));
        assert!(answer(Err(gone()), false).is_err());
        assert!(Failure::Unreachable("t".into()).needs_cleanup());
        assert!(!gone().needs_cleanup());
    }
}
