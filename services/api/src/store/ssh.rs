//! SSH switches and codes: `apps.enable_ssh`, `spaces.allow_ssh` (1 or 0) and the `ssh_codes`
//! table of one-time codes (kept as their SHA-256 with the claims of the user they were issued
//! to; `claims` is JSON text).

use sqlx::Row as _;

use super::{to_json, Exec};
use crate::error::{ApiError, ApiResult};

/// Whether the app allows SSH (`None`: no such app).
pub async fn app_enabled<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Option<bool>> {
    let row = sqlx::query("SELECT enable_ssh FROM apps WHERE guid = $1")
        .bind(app)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get::<i64, _>("enable_ssh").map(|v| v != 0)).transpose().map_err(Into::into)
}

pub async fn set_app_enabled<'e>(
    ex: impl Exec<'e>,
    app: &str,
    on: bool,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE apps SET enable_ssh = $1, updated_at = $2 WHERE guid = $3")
        .bind(i64::from(on))
        .bind(now)
        .bind(app)
        .execute(ex)
        .await?;
    Ok(())
}

/// Whether the space allows SSH (`None`: no such space).
pub async fn space_allowed<'e>(ex: impl Exec<'e>, space: &str) -> ApiResult<Option<bool>> {
    let row = sqlx::query("SELECT allow_ssh FROM spaces WHERE guid = $1")
        .bind(space)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get::<i64, _>("allow_ssh").map(|v| v != 0)).transpose().map_err(Into::into)
}

pub async fn set_space_allowed<'e>(
    ex: impl Exec<'e>,
    space: &str,
    on: bool,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE spaces SET allow_ssh = $1, updated_at = $2 WHERE guid = $3")
        .bind(i64::from(on))
        .bind(now)
        .bind(space)
        .execute(ex)
        .await?;
    Ok(())
}

/// Keep a code (by its hash) for the user of `claims` until `expires_at` (ms).
pub async fn insert_code<'e>(
    ex: impl Exec<'e>,
    code_hash: &str,
    claims: &auth::Claims,
    expires_at: i64,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO ssh_codes (code_hash, claims, expires_at, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(code_hash)
    .bind(to_json(claims))
    .bind(expires_at)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Take a code out: its claims and expiry, once; a second redemption finds nothing.
pub async fn take_code<'e>(
    ex: impl Exec<'e>,
    code_hash: &str,
) -> ApiResult<Option<(auth::Claims, i64)>> {
    let row =
        sqlx::query("DELETE FROM ssh_codes WHERE code_hash = $1 RETURNING claims, expires_at")
            .bind(code_hash)
            .fetch_optional(ex)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let raw: String = row.try_get("claims")?;
    let claims = serde_json::from_str(&raw).map_err(|e| ApiError::Corrupt {
        table: "ssh_codes",
        id: code_hash.chars().take(12).collect(),
        detail: format!("column claims: {e}"),
    })?;
    Ok(Some((claims, row.try_get("expires_at")?)))
}

/// Remove codes that expired before `now`.
pub async fn sweep_codes<'e>(ex: impl Exec<'e>, now: i64) -> ApiResult<u64> {
    let res =
        sqlx::query("DELETE FROM ssh_codes WHERE expires_at < $1").bind(now).execute(ex).await?;
    Ok(res.rows_affected())
}
