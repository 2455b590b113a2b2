//! The v3 error envelope: `{"errors": [{code, title, detail}]}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
}

/// One error: CC's numeric code, its `CF-` title, and the sentence for people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn the_envelope_round_trips() {
        let e: Errors = round_trip(
            r#"{"errors":[{"code":10010,"title":"CF-ResourceNotFound","detail":"App not found"}]}"#,
        );
        assert_eq!(e.errors[0].detail, "App not found");
    }
}
