//! Small helpers every resource module uses: clock, guids, CF timestamps, links, JSON bodies
//! with CF's parse errors, and the audit-event writer.

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `YYYY-MM-DDThh:mm:ssZ`, second precision, as CC renders timestamps.
pub fn ts(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

pub fn link(url: String) -> Value {
    json!({ "href": url })
}

pub fn link_method(url: String, method: &str) -> Value {
    json!({ "href": url, "method": method })
}

pub fn to_one(guid: &str) -> Value {
    if guid.is_empty() {
        json!({ "data": null })
    } else {
        json!({ "data": { "guid": guid } })
    }
}

pub fn metadata() -> Value {
    json!({ "labels": {}, "annotations": {} })
}

/// Parse a JSON request body, answering CF's 400/422 for malformed or mistyped input and
/// naming the offending field.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.is_empty() {
        return Err(ApiError::Parse("invalid request body".into()));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Parse(format!("invalid request body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Parse("invalid request body: expected a JSON object".into()));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::Unprocessable(format!("Invalid field '{path}': {}", e.into_inner()))
    })
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

/// Whether an insert failed on a unique constraint (both engines).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE")
                || d.message().contains("duplicate key")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_second_precision_and_z() {
        assert_eq!(ts(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn bodies_name_the_bad_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            name: String,
        }
        let e = body::<B>(&Bytes::from_static(b"{\"name\": 3}")).expect_err("must fail");
        assert!(e.to_string().contains("name"), "{e}");
        assert!(matches!(body::<B>(&Bytes::from_static(b"{nope")), Err(ApiError::Parse(_))));
        assert!(matches!(body::<B>(&Bytes::from_static(b"[]")), Err(ApiError::Parse(_))));
    }
}
