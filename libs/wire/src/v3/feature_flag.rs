//! Feature flags (`/v3/feature_flags`): platform-wide switches an admin turns on and off.

use serde::{Deserialize, Serialize};

use super::common::{present, Links};

/// `GET /v3/feature_flags/:name`. `updated_at` is `null` for a flag never changed (its
/// default applies); `custom_error_message` replaces the flag's name in the
/// `CF-FeatureDisabled` error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureFlag {
    pub name: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub custom_error_message: Option<String>,
    #[serde(default)]
    pub links: Links,
}

/// The body of `PATCH /v3/feature_flags/:name`: both fields optional; a `null` message
/// clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFlagUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Absent: unchanged; `null`: cleared; a string: set.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub custom_error_message: Option<Option<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn flags_read_and_write_as_cc_renders_them() {
        let f: FeatureFlag = round_trip(
            r#"{"name": "task_creation", "enabled": false, "updated_at": "2026-12-04T10:00:00Z",
                "custom_error_message": "Tasks are off for maintenance",
                "links": {"self": {"href": "https://api.example.com/v3/feature_flags/task_creation"}}}"#,
        );
        assert!(!f.enabled);
        let never: FeatureFlag = round_trip(
            r#"{"name": "diego_docker", "enabled": false, "updated_at": null,
                "custom_error_message": null, "links": {}}"#,
        );
        assert_eq!(never.updated_at, None);
        let clear: FeatureFlagUpdate =
            serde_json::from_str(r#"{"custom_error_message": null}"#).expect("parses");
        assert_eq!(clear.custom_error_message, Some(None));
        assert_eq!(clear.enabled, None);
        let set: FeatureFlagUpdate = serde_json::from_str(r#"{"enabled": true}"#).expect("parses");
        assert_eq!(set.custom_error_message, None);
        assert!(serde_json::from_str::<FeatureFlagUpdate>(r#"{"enable": true}"#).is_err());
    }
}
