//! The token issuer's documents, as UAA gives them: the token grant and its error, the user
//! info, the login info, and the SCIM users `cf create-user` manages.

use serde::{Deserialize, Serialize};

/// The answer of `POST /oauth/token`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrant {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    /// Only for user grants (password, refresh token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: i64,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub jti: String,
}

/// An OAuth error: `invalid_grant`, `invalid_token`, ...
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// `GET /userinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    pub user_id: Option<String>,
    pub sub: String,
    pub user_name: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub origin: Option<String>,
    pub zid: String,
}

/// `GET /login`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginInfo {
    pub app: AppVersion,
    pub zone_name: String,
    pub prompts: std::collections::BTreeMap<String, Vec<String>>,
    pub links: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppVersion {
    pub version: String,
}

/// A SCIM user (`/Users`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScimUser {
    pub id: String,
    pub user_name: String,
    pub origin: String,
    pub emails: Vec<ScimEmail>,
    pub active: bool,
    pub verified: bool,
    pub schemas: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScimEmail {
    pub value: String,
    pub primary: bool,
}

/// A SCIM list (`GET /Users?filter=...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScimList {
    pub resources: Vec<ScimUser>,
    pub total_results: usize,
    pub start_index: usize,
    pub items_per_page: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(json: &str) -> T {
        let want: serde_json::Value = serde_json::from_str(json).expect("example is JSON");
        let typed: T = serde_json::from_value(want.clone()).expect("example parses");
        assert_eq!(serde_json::to_value(&typed).expect("serializes"), want);
        typed
    }

    #[test]
    fn uaa_documents_survive_a_round_trip() {
        let g: TokenGrant = round_trip(
            r#"{"access_token": "a.b.c", "token_type": "bearer", "refresh_token": "r",
                "expires_in": 599, "scope": "openid", "jti": "j"}"#,
        );
        assert_eq!(g.refresh_token.as_deref(), Some("r"));
        round_trip::<TokenGrant>(
            r#"{"access_token": "a", "token_type": "bearer", "expires_in": 599, "scope": "x", "jti": "j"}"#,
        );
        round_trip::<OAuthError>(
            r#"{"error": "invalid_grant", "error_description": "Bad credentials"}"#,
        );
        round_trip::<UserInfo>(
            r#"{"user_id": "u", "sub": "u", "user_name": "dev", "email": "dev", "name": "dev",
                "origin": "uaa", "zid": "uaa"}"#,
        );
        round_trip::<LoginInfo>(
            r#"{"app": {"version": "0.1.0"}, "zone_name": "uaa",
                "prompts": {"username": ["text", "Email"], "password": ["password", "Password"]}, "links": {}}"#,
        );
        round_trip::<ScimList>(
            r#"{"resources": [{"id": "u", "userName": "dev", "origin": "uaa",
                "emails": [{"value": "dev", "primary": true}], "active": true, "verified": true,
                "schemas": ["urn:scim:schemas:core:1.0"]}], "totalResults": 1, "startIndex": 1, "itemsPerPage": 100}"#,
        );
    }
}
