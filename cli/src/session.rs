//! `paas api`, `login`, `logout`, `target`, `oauth-token`, `version`.

use serde_json::Value;
use wire::v3::{Organization, Space};

use crate::client::{self, query, Client, Result};
use crate::config::{Config, Named};
use crate::error::CliError;
use crate::output::{bold, pairs};
use crate::token::{Grant, GrantError};

/// Read the root document of `url` into the config.
pub async fn set_api(cfg: &mut Config, url: &str) -> Result<()> {
    let url = url.trim_end_matches('/');
    let url = if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    };
    let res = client::http_client().get(format!("{url}/")).send().await?;
    if !res.status().is_success() {
        return Err(CliError::Failed(format!(
            "{url} is not a platform API (it answered {}); check the URL",
            res.status()
        )));
    }
    let root: Value = res
        .json()
        .await
        .map_err(|_| CliError::Failed(format!("{url} is not a platform API; check the URL")))?;
    let link = |name: &str| root["links"][name]["href"].as_str().unwrap_or_default().to_owned();
    if link("cloud_controller_v3").is_empty() {
        return Err(CliError::Failed(format!("{url} does not offer the v3 API; check the URL")));
    }
    let login = link("login");
    *cfg = Config {
        api: url.clone(),
        login: if login.is_empty() { url.clone() } else { login },
        uaa: link("uaa"),
        log_cache: link("log_cache"),
        api_version: root["links"]["cloud_controller_v3"]["meta"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ..Config::default()
    };
    Ok(())
}

pub async fn api(url: Option<String>) -> Result<()> {
    let mut cfg = Config::load()?;
    match url {
        None => {
            if cfg.api.is_empty() {
                println!("No API endpoint set. Use 'paas api URL' to set one.");
            } else {
                println!(
                    "{}",
                    pairs(&[
                        ("API endpoint", cfg.api.clone()),
                        ("API version", cfg.api_version.clone())
                    ])
                );
            }
        }
        Some(u) => {
            set_api(&mut cfg, &u).await?;
            cfg.save()?;
            println!("Setting API endpoint to {}...\nOK\n", cfg.api);
            println!(
                "{}",
                pairs(&[
                    ("API endpoint", cfg.api.clone()),
                    ("API version", cfg.api_version.clone())
                ])
            );
            println!("\nNot logged in. Use 'paas login' to log in.");
        }
    }
    Ok(())
}

fn prompt(label: &str) -> Result<String> {
    use std::io::Write as _;
    print!("{label}: ");
    let _ = std::io::stdout().flush();
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).map_err(|e| CliError::Other(e.to_string()))?;
    Ok(s.trim().to_owned())
}

/// The password grant; returns the saved config.
pub async fn password_grant(cfg: &mut Config, user: &str, password: &str) -> Result<()> {
    let res = client::http_client()
        .post(format!("{}/oauth/token", cfg.login.trim_end_matches('/')))
        .basic_auth("cf", Some(""))
        .header("accept", "application/json")
        .form(&[("grant_type", "password"), ("username", user), ("password", password)])
        .send()
        .await?;
    if res.status() == reqwest::StatusCode::UNAUTHORIZED {
        let e: GrantError = res.json().await.unwrap_or_default();
        let d = e.error_description.as_deref().unwrap_or("Bad credentials");
        let msg = if d == "Bad credentials" {
            "Credentials were rejected, please try again.".to_owned()
        } else {
            d.to_owned()
        };
        return Err(CliError::Failed(msg));
    }
    if !res.status().is_success() {
        return Err(client::api_error(res).await);
    }
    let grant: Grant = res.json().await?;
    cfg.access_token = grant.access_token;
    cfg.refresh_token = grant.refresh_token.unwrap_or_default();
    Ok(())
}

/// `cf auth USERNAME PASSWORD`: log in without prompts; the target is cleared.
pub async fn auth(user: &str, password: &str) -> Result<()> {
    let mut cfg = Config::load()?;
    cfg.require_api()?;
    println!("API endpoint: {}\nAuthenticating...", cfg.api);
    password_grant(&mut cfg, user, password).await?;
    cfg.org = None;
    cfg.space = None;
    cfg.save()?;
    println!("OK\n\nUse 'paas target' to target an org and a space.");
    Ok(())
}

/// A secret from the terminal without echo, or a line of stdin when it is not a terminal.
fn secret(label: &str) -> Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("{label}: "))
            .map_err(|e| CliError::Other(e.to_string()));
    }
    prompt(label)
}

/// `cf passwd`: the current password, the new one twice; then log in again.
pub async fn passwd() -> Result<()> {
    let mut c = Client::new(Config::load()?);
    c.cfg.require_login()?;
    let token = c.token().await?;
    let id = crate::token::claims(&token).and_then(|t| t.user_id).ok_or_else(|| {
        CliError::NotLoggedIn("This session has no user. Use 'paas login' to log in.".into())
    })?;
    let current = secret("Current password")?;
    let new = secret("New password")?;
    if secret("Verify password")? != new {
        return Err(CliError::Usage("Password verification does not match.".into()));
    }
    println!("Changing password...");
    let url = format!("{}/Users/{id}/password", c.cfg.login.trim_end_matches('/'));
    let res = client::http_client()
        .put(url)
        .bearer_auth(token)
        .json(&serde_json::json!({"oldPassword": current, "password": new}))
        .send()
        .await?;
    if !res.status().is_success() {
        let e: GrantError = res.json().await.unwrap_or_default();
        let why = e.error_description.unwrap_or_else(|| "the password was not changed".into());
        return Err(CliError::Failed(format!("{why}. Nothing was changed.")));
    }
    c.cfg.access_token.clear();
    c.cfg.refresh_token.clear();
    c.cfg.save()?;
    println!("OK\nPlease log in again.");
    Ok(())
}

pub struct LoginArgs {
    pub api: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub org: Option<String>,
    pub space: Option<String>,
}

pub async fn login(a: LoginArgs) -> Result<()> {
    let mut cfg = Config::load()?;
    if let Some(u) = &a.api {
        set_api(&mut cfg, u).await?;
    }
    cfg.require_api()?;
    println!("API endpoint: {}\n", cfg.api);
    let user = match a.user {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let mut tries = 0;
    loop {
        let password = match &a.password {
            Some(p) => p.clone(),
            None => rpassword::prompt_password("Password: ")
                .map_err(|e| CliError::Other(e.to_string()))?,
        };
        println!("Authenticating...");
        match password_grant(&mut cfg, &user, &password).await {
            Ok(()) => break,
            Err(CliError::Failed(m)) if a.password.is_none() && tries < 2 => {
                println!("{m}");
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
    cfg.org = None;
    cfg.space = None;
    cfg.save()?;
    println!("OK\n");
    let mut c = Client::new(cfg);
    choose_target(&mut c, a.org.as_deref(), a.space.as_deref()).await?;
    c.cfg.save()?;
    show_target(&c.cfg);
    Ok(())
}

/// Target the named org/space, or the only one there is.
async fn choose_target(c: &mut Client, org: Option<&str>, space: Option<&str>) -> Result<()> {
    let orgs: Vec<Organization> = match org {
        Some(o) => c.list(&format!("/v3/organizations{}", query(&[("names", o)]))).await?,
        None => c.list("/v3/organizations?order_by=name").await?,
    };
    let chosen = match (org, orgs.len()) {
        (Some(o), 0) => return Err(CliError::NotFound(format!("Organization '{o}' not found."))),
        (_, 1) => Some(&orgs[0]),
        (Some(_), _) => Some(&orgs[0]),
        _ => None,
    };
    let Some(o) = chosen else { return Ok(()) };
    c.cfg.org = Some(Named { guid: o.guid.clone(), name: o.name.clone() });
    let org_guid = o.guid.clone();
    let spaces: Vec<Space> = match space {
        Some(s) => {
            c.list(&format!(
                "/v3/spaces{}",
                query(&[("names", s), ("organization_guids", &org_guid)])
            ))
            .await?
        }
        None => {
            c.list(&format!(
                "/v3/spaces{}",
                query(&[("organization_guids", &org_guid), ("order_by", "name")])
            ))
            .await?
        }
    };
    match (space, spaces.len()) {
        (Some(s), 0) => {
            return Err(CliError::NotFound(format!(
                "Space '{s}' not found in org '{}'.",
                c.cfg.org.as_ref().map(|o| o.name.as_str()).unwrap_or("")
            )))
        }
        (Some(_), _) | (None, 1) => {
            c.cfg.space = Some(Named { guid: spaces[0].guid.clone(), name: spaces[0].name.clone() })
        }
        _ => c.cfg.space = None,
    }
    Ok(())
}

pub fn show_target(cfg: &Config) {
    let org = cfg.org.as_ref().map(|o| o.name.clone());
    let space = cfg.space.as_ref().map(|s| s.name.clone());
    println!(
        "{}",
        pairs(&[
            ("API endpoint", cfg.api.clone()),
            ("API version", cfg.api_version.clone()),
            ("user", cfg.user().unwrap_or_default()),
            (
                "org",
                org.clone().unwrap_or_else(|| "No org targeted, use 'paas target -o ORG'".into())
            ),
            (
                "space",
                space.unwrap_or_else(|| "No space targeted, use 'paas target -s SPACE'".into())
            ),
        ])
    );
}

pub fn logout() -> Result<()> {
    let mut cfg = Config::load()?;
    println!("Logging out {}...", cfg.user().unwrap_or_default());
    cfg.access_token.clear();
    cfg.refresh_token.clear();
    cfg.org = None;
    cfg.space = None;
    cfg.save()?;
    println!("OK");
    Ok(())
}

/// `cf oauth-token`: a freshly refreshed access token, for scripts.
pub async fn oauth_token(c: &mut Client) -> Result<()> {
    c.cfg.require_login()?;
    c.refresh().await?;
    println!("bearer {}", c.cfg.access_token);
    Ok(())
}

/// `cf version`.
pub fn version() {
    println!("paas version {}", env!("CARGO_PKG_VERSION"));
}

pub async fn target(org: Option<String>, space: Option<String>) -> Result<()> {
    let cfg = Config::load()?;
    cfg.require_login()?;
    let mut c = Client::new(cfg);
    if org.is_some() || space.is_some() {
        let org_name = match org {
            Some(o) => o,
            None => c.cfg.require_org()?.name.clone(),
        };
        choose_target(&mut c, Some(&org_name), space.as_deref()).await?;
        c.cfg.save()?;
    }
    show_target(&c.cfg);
    let _ = bold;
    Ok(())
}
