//! The CLI's own tokens: the claims it reads from its access token (unverified: the API checks
//! them) and the token endpoint's answers.

use base64::Engine as _;
use serde::Deserialize;

/// What the CLI reads from an access token's payload.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

/// The payload of a JWT, unverified.
pub fn claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether the token expires within a minute (or cannot be read).
pub fn expiring(token: &str) -> bool {
    claims(token).and_then(|c| c.exp).is_none_or(|exp| exp < now() + 60)
}

/// The user name in the token, if any.
pub fn user_name(token: &str) -> Option<String> {
    claims(token)?.user_name
}

/// The error answer of the token endpoint.
pub use wire::uaa::OAuthError as GrantError;
/// The answer of `POST /oauth/token` (password and refresh-token grants).
pub use wire::uaa::TokenGrant as Grant;

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b("{\"alg\":\"RS256\"}"), b(payload))
    }

    #[test]
    fn tokens_near_expiry_are_refreshed() {
        let soon = jwt(&format!("{{\"exp\": {}}}", now() + 30));
        let later = jwt(&format!("{{\"exp\": {}, \"user_name\": \"ann\"}}", now() + 3600));
        assert!(expiring(&soon));
        assert!(!expiring(&later));
        assert!(expiring("garbage"));
        assert_eq!(user_name(&later).as_deref(), Some("ann"));
        assert_eq!(user_name(&soon), None);
    }
}
