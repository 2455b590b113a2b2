//! The CF v3 error envelope (docs/api.md, "Errors"): one error type for the public API, each
//! variant mapped to its HTTP status, code and title right here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use wire::v3::{ErrorEntry, Errors};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Authentication error")]
    NotAuthenticated,
    #[error("Invalid Auth Token")]
    InvalidAuthToken,
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    /// `"<Resource> not found"`; also what a caller who may not see the resource gets.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("Bad request: {0}")]
    BadRequest(String),
    #[error("Request invalid due to parse error: {0}")]
    Parse(String),
    #[error("The query parameter is invalid: {0}")]
    BadQuery(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Several validation failures reported together (manifests).
    #[error("{}", .0.join("; "))]
    UnprocessableMany(Vec<String>),
    #[error("{0}")]
    Uniqueness(String),
    #[error("Only one build can be STAGING at a time per application.")]
    StagingInProgress,
    #[error("Bits may be uploaded only once. Create a new package to upload different bits.")]
    PackageBitsAlreadyUploaded,
    #[error("The app upload is invalid: {0}")]
    AppBitsUploadInvalid(String),
    /// The same route and service instance bound twice (CC's 130008, answered as a 422).
    #[error("The route and service instance are already bound.")]
    RouteAlreadyBound,
    /// A feature flag is off: its name, or the message an admin gave it.
    #[error("Feature Disabled: {0}")]
    FeatureDisabled(String),
    /// The state of a resource forbids the change, and will not allow it later (a build
    /// another stager claimed, or that is no longer STAGING).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A service broker failed or answered what OSBAPI does not allow (its words, if any).
    #[error("{0}")]
    Broker(String),
    /// A broker's catalog could not be read or is not valid.
    #[error("Service broker catalog is invalid: {0}")]
    CatalogInvalid(String),
    #[error("An unknown error occurred.")]
    Internal(String),
    /// A stored row that does not decode: never shown as an empty value, always named.
    #[error("An unknown error occurred.")]
    Corrupt { table: &'static str, id: String, detail: String },
}

impl ApiError {
    fn parts(&self) -> (StatusCode, u32, &'static str) {
        use StatusCode as S;
        match self {
            Self::NotAuthenticated => (S::UNAUTHORIZED, 10002, "CF-NotAuthenticated"),
            Self::InvalidAuthToken => (S::UNAUTHORIZED, 1000, "CF-InvalidAuthToken"),
            Self::NotAuthorized => (S::FORBIDDEN, 10003, "CF-NotAuthorized"),
            Self::NotFound(_) => (S::NOT_FOUND, 10010, "CF-ResourceNotFound"),
            Self::BadRequest(_) => (S::BAD_REQUEST, 1004, "CF-BadRequest"),
            Self::Parse(_) => (S::BAD_REQUEST, 1001, "CF-MessageParseError"),
            Self::BadQuery(_) => (S::BAD_REQUEST, 10005, "CF-BadQueryParameter"),
            Self::Unprocessable(_) | Self::UnprocessableMany(_) => {
                (S::UNPROCESSABLE_ENTITY, 10008, "CF-UnprocessableEntity")
            }
            Self::Uniqueness(_) => (S::UNPROCESSABLE_ENTITY, 10016, "CF-UniquenessError"),
            Self::StagingInProgress => (S::UNPROCESSABLE_ENTITY, 170017, "CF-StagingInProgress"),
            Self::PackageBitsAlreadyUploaded => {
                (S::BAD_REQUEST, 150004, "CF-PackageBitsAlreadyUploaded")
            }
            Self::AppBitsUploadInvalid(_) => (S::BAD_REQUEST, 160001, "CF-AppBitsUploadInvalid"),
            Self::RouteAlreadyBound => {
                (S::UNPROCESSABLE_ENTITY, 130008, "CF-ServiceInstanceAlreadyBoundToSameRoute")
            }
            Self::FeatureDisabled(_) => (S::FORBIDDEN, 330002, "CF-FeatureDisabled"),
            Self::Conflict(_) => (S::CONFLICT, 10017, "CF-Conflict"),
            Self::ServiceUnavailable(_) => (S::SERVICE_UNAVAILABLE, 10015, "CF-ServiceUnavailable"),
            Self::Broker(_) => (S::BAD_GATEWAY, 10001, "CF-ServiceBrokerBadResponse"),
            Self::CatalogInvalid(_) => (S::BAD_GATEWAY, 270012, "CF-ServiceBrokerCatalogInvalid"),
            Self::Internal(_) | Self::Corrupt { .. } => {
                (S::INTERNAL_SERVER_ERROR, 10001, "UnknownError")
            }
        }
    }

    /// The `errors[]` entries of this error (jobs carry the same objects).
    pub fn entries(&self) -> Vec<ErrorEntry> {
        let (_, code, title) = self.parts();
        let entry =
            |detail: String| ErrorEntry { code: i64::from(code), title: title.to_owned(), detail };
        match self {
            Self::UnprocessableMany(all) => all.iter().cloned().map(entry).collect(),
            _ => vec![entry(self.to_string())],
        }
    }

    /// What went wrong, with the detail of server-side failures (for logs and start-up errors).
    pub fn detail(&self) -> String {
        match self {
            Self::Internal(detail) => detail.clone(),
            Self::Corrupt { table, id, detail } => format!("{table} row {id}: {detail}"),
            other => other.to_string(),
        }
    }

    /// Server-side failures are logged with their detail (which never reaches the client).
    pub fn log(&self) {
        match self {
            Self::Internal(detail) => tracing::error!(error = %detail, "api request failed"),
            Self::Corrupt { table, id, detail } => {
                tracing::error!(table, id, error = %detail, "a stored row does not decode")
            }
            _ => {}
        }
    }

    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let (status, ..) = self.parts();
        (status, Json(Errors { errors: self.entries() })).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<blobstore::BlobError> for ApiError {
    fn from(e: blobstore::BlobError) -> Self {
        Self::Internal(format!("blobstore: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(format!("io: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_resource_and_uses_the_cf_code() {
        let e = ApiError::NotFound("App");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let v = &e.entries()[0];
        assert_eq!(v.code, 10010);
        assert_eq!(v.title, "CF-ResourceNotFound");
        assert_eq!(v.detail, "App not found");
    }

    #[test]
    fn many_validation_errors_become_several_entries() {
        let e = ApiError::UnprocessableMany(vec!["a".into(), "b".into()]);
        assert_eq!(e.entries().len(), 2);
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
