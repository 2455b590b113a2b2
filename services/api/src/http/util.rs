//! How CF v3 renders the pieces every resource shares: timestamps, links, to-one
//! relationships, empty metadata; and the name and relationship checks of request bodies.

use serde_json::Value;
use wire::v3::{Link, Links};

use crate::error::{ApiError, ApiResult};

/// `YYYY-MM-DDThh:mm:ssZ`, second precision, as CC renders timestamps.
pub fn ts(ms: i64) -> String {
    wire::v3::timestamp(ms)
}

/// A resource's `links` from `(name, link)` pairs.
pub fn links<const N: usize>(items: [(&str, Link); N]) -> Links {
    items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `201 Created` with a resource.
pub fn created<T: serde::Serialize>(resource: T) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (axum::http::StatusCode::CREATED, axum::Json(resource)).into_response()
}

/// Reads a `{"data":{"guid":"..."}}` relationship.
pub fn rel_guid(v: &Value, name: &str) -> ApiResult<String> {
    v.get("relationships")
        .and_then(|r| r.get(name))
        .and_then(|r| r.get("data"))
        .and_then(|d| d.get("guid"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Unprocessable(format!("Relationships '{name}' must be set")))
}

/// A name must be non-empty and at most 255 characters.
pub fn check_name(name: &str, what: &str) -> ApiResult<()> {
    if name.trim().is_empty() {
        return Err(ApiError::Unprocessable(format!("{what} name can't be blank")));
    }
    if name.chars().count() > 255 {
        return Err(ApiError::Unprocessable(format!("{what} name is too long (maximum is 255)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_second_precision_and_z() {
        assert_eq!(ts(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}
