//! Environment variable groups (admins): `running-environment-variable-group`,
//! `staging-environment-variable-group` and their `set-` commands, which replace a group.

use std::collections::BTreeMap;

use wire::v3::env_group::{EnvironmentVariableGroup, EnvironmentVariableGroupUpdate};

use crate::client::{Client, Ignored, Result};
use crate::error::CliError;
use crate::output::table;

/// `running` or `staging`.
pub async fn show(c: &mut Client, group: &str) -> Result<()> {
    c.cfg.require_login()?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Getting the {group} environment variable group as {who}...");
    let g: EnvironmentVariableGroup =
        c.get(&format!("/v3/environment_variable_groups/{group}")).await?;
    println!("OK\n");
    if g.var.is_empty() {
        println!("No {group} environment variable group has been set.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = g.var.into_iter().map(|(k, v)| vec![k, v]).collect();
    println!("{}", table(&["variable name", "assigned value"], &rows));
    Ok(())
}

/// Replace the group with `json` (an object of strings): variables not in it are removed.
pub async fn set(c: &mut Client, group: &str, json: &str) -> Result<()> {
    c.cfg.require_login()?;
    let wanted: BTreeMap<String, String> = serde_json::from_str(json).map_err(|_| {
        CliError::Usage(
            "Invalid environment variable group provided. Please provide a valid JSON object \
             of strings, e.g. '{\"name\":\"value\"}'."
                .into(),
        )
    })?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Setting the contents of the {group} environment variable group as {who}...");
    let path = format!("/v3/environment_variable_groups/{group}");
    let now: EnvironmentVariableGroup = c.get(&path).await?;
    let mut var: BTreeMap<String, Option<String>> =
        now.var.into_keys().map(|k| (k, None)).collect();
    var.extend(wanted.into_iter().map(|(k, v)| (k, Some(v))));
    let _: Ignored = c.patch(&path, &EnvironmentVariableGroupUpdate { var }).await?;
    println!("OK");
    Ok(())
}
