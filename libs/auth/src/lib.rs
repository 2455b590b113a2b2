//! Tokens between users, services and the api (our UAA): the JWT claims CF clients read, the
//! verifier every service uses to check a bearer token against the api's published keys
//! (`GET /token_keys`), and a client-credentials token source for platform components.
//!
//! Issuing tokens is the api's job; this crate only checks and fetches them. It must never
//! accept an unsigned (`alg: none`) or symmetric-key token.

mod client;
mod verify;

use serde::{Deserialize, Serialize};

pub use client::{ClientCredentials, TokenSourceError};
pub use verify::{bearer_token, AuthError, Jwk, Jwks, Verifier};

/// Scope of platform components calling each other's internal APIs.
pub const SCOPE_INTERNAL: &str = "paas.internal";
pub const SCOPE_ADMIN: &str = "cloud_controller.admin";
pub const SCOPE_ADMIN_READ_ONLY: &str = "cloud_controller.admin_read_only";
pub const SCOPE_GLOBAL_AUDITOR: &str = "cloud_controller.global_auditor";
pub const SCOPE_READ: &str = "cloud_controller.read";
pub const SCOPE_WRITE: &str = "cloud_controller.write";
pub const SCOPE_UPDATE_BUILD_STATE: &str = "cloud_controller.update_build_state";
/// Read every log, including the platform's own (log-cache's admin scope).
pub const SCOPE_LOGS_ADMIN: &str = "logs.admin";
pub const SCOPE_FIREHOSE: &str = "doppler.firehose";

/// Access-token claims, as UAA emits them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub jti: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub cid: String,
    #[serde(default)]
    pub grant_type: String,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub aud: Vec<String>,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }

    pub fn is_admin(&self) -> bool {
        self.has_scope(SCOPE_ADMIN)
    }

    /// Reads everything (admin, read-only admin, global auditor).
    pub fn is_global_reader(&self) -> bool {
        self.is_admin()
            || self.has_scope(SCOPE_ADMIN_READ_ONLY)
            || self.has_scope(SCOPE_GLOBAL_AUDITOR)
    }

    /// A platform component's token (client credentials with the internal scope).
    pub fn is_internal(&self) -> bool {
        self.has_scope(SCOPE_INTERNAL)
    }

    /// The user guid, or the client id for client tokens.
    pub fn actor_guid(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.client_id)
    }

    /// The name shown as "as <user>" and in audit events.
    pub fn actor_name(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.client_id)
    }
}
