//! What can go wrong, each with its exit code and a message that says what to do next.

/// Exit codes: 0 ok, 1 an API or operation failure, 2 usage, 3 not logged in or no target,
/// 4 not found.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotLoggedIn(String),
    #[error("{0}")]
    NotFound(String),
    /// An error answer of the API (CF v3 envelope).
    #[error("{detail}")]
    Api { status: u16, title: String, detail: String, request_id: Option<String> },
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            Self::NotLoggedIn(_) => 3,
            Self::NotFound(_) => 4,
            Self::Api { status: 404, .. } => 4,
            Self::Api { .. } | Self::Failed(_) | Self::Other(_) => 1,
        }
    }

    /// The lines printed for this error.
    pub fn render(&self) -> String {
        match self {
            Self::Api { status, title, detail, request_id } => {
                let mut s = format!("FAILED\n{detail}");
                if title == "CF-InvalidAuthToken" || title == "CF-NotAuthenticated" {
                    s.push_str("\nYour session has expired or is invalid. Use 'paas login' to log in again.");
                } else if *status >= 500 {
                    s.push_str("\nThe platform had a problem; try again, and tell your operator if it persists.");
                }
                if let Some(id) = request_id {
                    s.push_str(&format!("\n(request id: {id})"));
                }
                s
            }
            other => format!("FAILED\n{other}"),
        }
    }
}

impl From<reqwest::Error> for CliError {
    fn from(e: reqwest::Error) -> Self {
        let what = if e.is_connect() {
            "cannot connect to the API; check the URL with 'paas api' and that the platform is running"
        } else if e.is_timeout() {
            "the API did not answer in time; try again"
        } else {
            "request to the API failed"
        };
        Self::Other(format!("{what} ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_distinguish_kinds() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::NotLoggedIn("x".into()).exit_code(), 3);
        assert_eq!(CliError::NotFound("x".into()).exit_code(), 4);
        let api = |status| CliError::Api {
            status,
            title: "t".into(),
            detail: "d".into(),
            request_id: None,
        };
        assert_eq!(api(404).exit_code(), 4);
        assert_eq!(api(422).exit_code(), 1);
    }

    #[test]
    fn api_errors_show_detail_and_request_id() {
        let e = CliError::Api {
            status: 401,
            title: "CF-InvalidAuthToken".into(),
            detail: "Invalid Auth Token".into(),
            request_id: Some("r-1".into()),
        };
        let text = e.render();
        assert!(text.starts_with("FAILED\nInvalid Auth Token"));
        assert!(text.contains("paas login"));
        assert!(text.contains("r-1"));
    }
}
