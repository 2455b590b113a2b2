//! Environment variable groups (`/v3/environment_variable_groups/running|staging`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::Links;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariableGroup {
    /// `null` while no admin has set the group.
    #[serde(default)]
    pub updated_at: Option<String>,
    pub name: String,
    #[serde(default)]
    pub var: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Links,
}

/// The body of `PATCH`: each variable set, or removed with `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariableGroupUpdate {
    pub var: BTreeMap<String, Option<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn groups_read_as_cc_renders_them() {
        let g: EnvironmentVariableGroup = round_trip(
            r#"{"updated_at": "2026-12-05T08:00:00Z", "name": "running",
                "var": {"DEBUG": "false", "HTTP_PROXY": "http://proxy:3128"},
                "links": {"self": {"href": "https://api.example.com/v3/environment_variable_groups/running"}}}"#,
        );
        assert_eq!(g.var["DEBUG"], "false");
        let never: EnvironmentVariableGroup =
            round_trip(r#"{"updated_at": null, "name": "staging", "var": {}, "links": {}}"#);
        assert_eq!(never.updated_at, None);
        let u: EnvironmentVariableGroupUpdate =
            round_trip(r#"{"var": {"DEBUG": null, "LANG": "C.UTF-8"}}"#);
        assert_eq!(u.var["DEBUG"], None);
    }
}
