//! Labels on apps, orgs, spaces, buildpacks, service instances, domains and stacks: `labels`,
//! `set-label`, `unset-label`.

use serde::Deserialize;
use wire::v3::{LabelsUpdate, Metadata};

use crate::client::{Client, Ignored, Result};
use crate::error::CliError;
use crate::output::{bold, table};

/// The resources whose labels can be changed (those the API lets one `PATCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    App,
    Org,
    Space,
    Buildpack,
    ServiceInstance,
    Domain,
    Stack,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Org => "org",
            Self::Space => "space",
            Self::Buildpack => "buildpack",
            Self::ServiceInstance => "service-instance",
            Self::Domain => "domain",
            Self::Stack => "stack",
        }
    }
}

/// A resource found by name: its API path and how cf names it in messages.
struct Target {
    path: String,
    shown: String,
}

async fn target(c: &mut Client, kind: Kind, name: &str) -> Result<Target> {
    let who = c.cfg.user().unwrap_or_default();
    let (path, place) = match kind {
        Kind::App => {
            let a = c.app(name).await?;
            (format!("/v3/apps/{}", a.guid), format!("in {}", c.cfg.where_as()))
        }
        Kind::ServiceInstance => {
            let si = c.require_service_instance(name).await?;
            (format!("/v3/service_instances/{}", si.guid), format!("in {}", c.cfg.where_as()))
        }
        Kind::Org => {
            (format!("/v3/organizations/{}", c.org(name).await?.guid), format!("as {who}"))
        }
        Kind::Space => {
            let o = c.cfg.require_org()?.clone();
            let s = c.space(&o.guid, name).await?;
            (format!("/v3/spaces/{}", s.guid), format!("in org {} as {who}", o.name))
        }
        Kind::Buildpack => {
            c.cfg.require_login()?;
            (format!("/v3/buildpacks/{}", c.buildpack(name).await?.guid), format!("as {who}"))
        }
        Kind::Domain => {
            c.cfg.require_login()?;
            (format!("/v3/domains/{}", c.domain(name).await?.guid), format!("as {who}"))
        }
        Kind::Stack => {
            c.cfg.require_login()?;
            let path = format!("/v3/stacks/{name}");
            match c.get::<Ignored>(&path).await {
                Err(CliError::Api { status: 404, .. }) => {
                    return Err(CliError::NotFound(format!(
                        "Stack '{name}' not found. See 'paas stacks'."
                    )))
                }
                other => other?,
            };
            (path, format!("as {who}"))
        }
    };
    Ok(Target { path, shown: format!("{} {} {place}", kind.as_str(), bold(name)) })
}

#[derive(Deserialize)]
struct WithMetadata {
    #[serde(default)]
    metadata: Metadata,
}

/// `cf labels TYPE NAME`.
pub async fn labels(c: &mut Client, kind: Kind, name: &str) -> Result<()> {
    let t = target(c, kind, name).await?;
    println!("Getting labels for {}...\n", t.shown);
    let r: WithMetadata = c.get(&t.path).await?;
    if r.metadata.labels.is_empty() {
        println!("No labels found.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r.metadata.labels.into_iter().map(|(k, v)| vec![k, v]).collect();
    println!("{}", table(&["key", "value"], &rows));
    Ok(())
}

/// `KEY=VALUE` pairs of `set-label`.
fn pairs(items: &[String]) -> Result<Vec<(String, Option<String>)>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Some(v.to_owned()))),
            _ => Err(CliError::Usage(format!(
                "Incorrect usage: labels are given as KEY=VALUE (got '{kv}')"
            ))),
        })
        .collect()
}

/// `cf set-label TYPE NAME KEY=VALUE...`.
pub async fn set(c: &mut Client, kind: Kind, name: &str, items: &[String]) -> Result<()> {
    let labels = pairs(items)?;
    let t = target(c, kind, name).await?;
    println!("Setting label(s) for {}...", t.shown);
    let _: Ignored = c.patch(&t.path, &LabelsUpdate::new(labels)).await?;
    println!("OK");
    Ok(())
}

/// `cf unset-label TYPE NAME KEY...`.
pub async fn unset(c: &mut Client, kind: Kind, name: &str, keys: &[String]) -> Result<()> {
    let t = target(c, kind, name).await?;
    println!("Removing label(s) for {}...", t.shown);
    let body = LabelsUpdate::new(keys.iter().map(|k| (k.clone(), None)));
    let _: Ignored = c.patch(&t.path, &body).await?;
    println!("OK");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_key_equals_value() {
        let got = pairs(&["env=prod".into(), "empty=".into()]).expect("pairs");
        assert_eq!(got[0], ("env".into(), Some("prod".into())));
        assert_eq!(got[1], ("empty".into(), Some(String::new())));
        assert!(matches!(pairs(&["env".into()]), Err(CliError::Usage(_))));
        assert!(matches!(pairs(&["=x".into()]), Err(CliError::Usage(_))));
    }
}
