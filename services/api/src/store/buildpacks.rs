//! The `buildpacks` table: admin buildpacks (bundled or uploaded), their detection position,
//! and the checksum of the stored zip.

use sqlx::any::AnyRow;
use sqlx::Row as _;

use wire::v3::stack::BuildpackState;

use super::{state_col, Exec};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct Buildpack {
    pub guid: String,
    pub name: String,
    /// Empty when the buildpack works on every stack.
    pub stack: String,
    pub position: i64,
    pub enabled: bool,
    pub locked: bool,
    pub filename: String,
    pub sha256: String,
    pub state: BuildpackState,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Buildpack {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            stack: r.try_get("stack")?,
            position: r.try_get("position")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            locked: r.try_get::<i64, _>("locked")? != 0,
            filename: r.try_get("filename")?,
            sha256: r.try_get("sha256")?,
            state: state_col(r, "buildpacks", "state", BuildpackState::parse)?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

fn decode(rows: &[AnyRow]) -> ApiResult<Vec<Buildpack>> {
    super::decode(rows, Buildpack::from_row)
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Buildpack>> {
    let row = sqlx::query("SELECT * FROM buildpacks WHERE guid = $1")
        .bind(guid)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Buildpack::from_row).transpose()
}

/// The buildpack named `name` for every stack (a bundled one).
pub async fn find_unstacked<'e>(ex: impl Exec<'e>, name: &str) -> ApiResult<Option<Buildpack>> {
    let row = sqlx::query("SELECT * FROM buildpacks WHERE name = $1 AND stack = ''")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Buildpack::from_row).transpose()
}

/// Whether any buildpack (of any stack or state) is named `name`.
pub async fn name_exists<'e>(ex: impl Exec<'e>, name: &str) -> ApiResult<bool> {
    let row = sqlx::query("SELECT guid FROM buildpacks WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// The READY buildpack named `name` usable on `stack`.
pub async fn ready_named<'e>(
    ex: impl Exec<'e>,
    name: &str,
    stack: &str,
) -> ApiResult<Option<Buildpack>> {
    let row = sqlx::query(
        "SELECT * FROM buildpacks WHERE name = $1 AND state = $3 AND (stack = '' OR stack = $2)",
    )
    .bind(name)
    .bind(stack)
    .bind(BuildpackState::Ready.as_str())
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Buildpack::from_row).transpose()
}

/// Every enabled READY buildpack usable on `stack`, in detection order.
pub async fn enabled_for<'e>(ex: impl Exec<'e>, stack: &str) -> ApiResult<Vec<Buildpack>> {
    let rows = sqlx::query(
        "SELECT * FROM buildpacks WHERE enabled = 1 AND state = $2 AND (stack = '' OR stack = $1) \
         ORDER BY position, created_at",
    )
    .bind(stack)
    .bind(BuildpackState::Ready.as_str())
    .fetch_all(ex)
    .await?;
    decode(&rows)
}

/// A new buildpack; `taken()` when one with its name and stack exists.
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    b: &Buildpack,
    taken: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO buildpacks (guid, name, stack, position, enabled, locked, filename, sha256, state, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&b.guid)
    .bind(&b.name)
    .bind(&b.stack)
    .bind(b.position)
    .bind(i64::from(b.enabled))
    .bind(i64::from(b.locked))
    .bind(&b.filename)
    .bind(&b.sha256)
    .bind(b.state.as_str())
    .bind(b.created_at)
    .bind(b.updated_at)
    .execute(ex)
    .await;
    super::unique_or(res, taken).map(|_| ())
}

/// Save the settings an admin changes: name, position, enabled, locked.
pub async fn update<'e>(ex: impl Exec<'e>, b: &Buildpack, now: i64) -> ApiResult<()> {
    sqlx::query(
        "UPDATE buildpacks SET name = $1, position = $2, enabled = $3, locked = $4, updated_at = $5 \
         WHERE guid = $6",
    )
    .bind(&b.name)
    .bind(b.position)
    .bind(i64::from(b.enabled))
    .bind(i64::from(b.locked))
    .bind(now)
    .bind(&b.guid)
    .execute(ex)
    .await?;
    Ok(())
}

/// A new zip was stored: its checksum (and filename, when given); the buildpack is READY.
pub async fn set_bits<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    filename: Option<&str>,
    sha256: &str,
    now: i64,
) -> ApiResult<()> {
    let q = match filename {
        Some(f) => sqlx::query(
            "UPDATE buildpacks SET filename = $1, sha256 = $2, state = $3, updated_at = $4 \
             WHERE guid = $5",
        )
        .bind(f),
        None => sqlx::query(
            "UPDATE buildpacks SET sha256 = $1, state = $2, updated_at = $3 WHERE guid = $4",
        ),
    };
    q.bind(sha256).bind(BuildpackState::Ready.as_str()).bind(now).bind(guid).execute(ex).await?;
    Ok(())
}

pub async fn delete<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM buildpacks WHERE guid = $1").bind(guid).execute(ex).await?;
    Ok(())
}
