//! Environment variable groups an admin set (`env_var_groups`); a group without a row is empty.

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::Exec;
use crate::error::{ApiError, ApiResult};

/// A group's variables and when they last changed (ms).
pub async fn find<'e>(
    ex: impl Exec<'e>,
    name: &str,
) -> ApiResult<Option<(BTreeMap<String, String>, i64)>> {
    let row = sqlx::query("SELECT vars, updated_at FROM env_var_groups WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let text: String = r.try_get("vars")?;
    let vars = serde_json::from_str(&text).map_err(|e| ApiError::Corrupt {
        table: "env_var_groups",
        id: name.to_owned(),
        detail: format!("vars are not a JSON object of strings: {e}"),
    })?;
    Ok(Some((vars, r.try_get("updated_at")?)))
}

/// Replace the group's variables.
pub async fn save<'e>(
    ex: impl Exec<'e>,
    name: &str,
    vars: &BTreeMap<String, String>,
    now: i64,
) -> ApiResult<()> {
    let text = serde_json::to_string(vars)
        .map_err(|e| ApiError::Internal(format!("env_var_groups '{name}': {e}")))?;
    sqlx::query(
        "INSERT INTO env_var_groups (name, vars, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET vars = $2, updated_at = $3",
    )
    .bind(name)
    .bind(text)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
