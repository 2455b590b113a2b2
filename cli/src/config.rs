//! The CLI's state between commands: `$PAAS_HOME/config.json` (default `~/.paas`), written
//! with mode 0600 because it holds tokens.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub guid: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub api: String,
    /// Token endpoint base (`links.login.href`).
    pub login: String,
    pub uaa: String,
    pub log_cache: String,
    pub api_version: String,
    pub access_token: String,
    pub refresh_token: String,
    pub org: Option<Named>,
    pub space: Option<Named>,
}

pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("PAAS_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".paas")
}

impl Config {
    pub fn path() -> PathBuf {
        home().join("config.json")
    }

    pub fn load() -> Result<Self, CliError> {
        let p = Self::path();
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::Usage(format!(
                    "{} is not valid ({e}); remove it and run 'paas api URL' again",
                    p.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::Other(format!("cannot read {}: {e}", p.display()))),
        }
    }

    pub fn save(&self) -> Result<(), CliError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let p = Self::path();
        let dir = p.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
        let tmp = dir.join(".config.json.tmp");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| CliError::Other(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        };
        write().map_err(|e| CliError::Other(format!("cannot write {}: {e}", p.display())))
    }

    pub fn require_api(&self) -> Result<&str, CliError> {
        if self.api.is_empty() {
            return Err(CliError::NotLoggedIn("No API endpoint set. Use 'paas login -a URL' or 'paas api URL' to target an endpoint.".into()));
        }
        Ok(&self.api)
    }

    pub fn require_login(&self) -> Result<(), CliError> {
        self.require_api()?;
        if self.access_token.is_empty() {
            return Err(CliError::NotLoggedIn("Not logged in. Use 'paas login' to log in.".into()));
        }
        Ok(())
    }

    pub fn require_org(&self) -> Result<&Named, CliError> {
        self.require_login()?;
        self.org.as_ref().ok_or_else(|| {
            CliError::NotLoggedIn(
                "No org targeted, use 'paas target -o ORG' to target an org.".into(),
            )
        })
    }

    pub fn require_space(&self) -> Result<&Named, CliError> {
        self.require_org()?;
        self.space.as_ref().ok_or_else(|| {
            CliError::NotLoggedIn(
                "No space targeted, use 'paas target -s SPACE' to target a space.".into(),
            )
        })
    }

    /// `org O / space S as U`, as cf names where a command acts.
    pub fn where_as(&self) -> String {
        let name = |n: &Option<Named>| n.as_ref().map(|n| n.name.clone()).unwrap_or_default();
        format!(
            "org {} / space {} as {}",
            name(&self.org),
            name(&self.space),
            self.user().unwrap_or_default()
        )
    }

    /// The user name in the access token, if any.
    pub fn user(&self) -> Option<String> {
        crate::token::user_name(&self.access_token)
    }
}
