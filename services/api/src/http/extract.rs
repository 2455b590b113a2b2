//! Request extractors with CF's answers for bad input: [`CfJson`] reads a JSON object body
//! into a typed request, a 400 `CF-MessageParseError` for malformed JSON and a 422 naming the
//! offending field for a mistyped one.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A JSON request body as `T`, checked as CF checks it.
pub struct CfJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CfJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::Parse(format!("invalid request body: {e}")))?;
        body(&bytes).map(CfJson)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
