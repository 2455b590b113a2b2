//! The `apps` table: one row per app, its desired state, lifecycle, current droplet and
//! environment variables (JSON text columns `buildpacks` and `env`).

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::v3::AppState;

use super::{json_col, state_col, to_json, unique_or, Exec};
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct App {
    pub guid: String,
    pub name: String,
    pub space_guid: String,
    /// What the developer asked for.
    pub state: AppState,
    pub lifecycle_type: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub droplet_guid: String,
    pub env: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl App {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            space_guid: r.try_get("space_guid")?,
            state: state_col(r, "apps", "state", AppState::parse)?,
            lifecycle_type: r.try_get("lifecycle_type")?,
            buildpacks: json_col(r, "apps", "buildpacks")?,
            stack: r.try_get("stack")?,
            droplet_guid: r.try_get("droplet_guid")?,
            env: json_col(r, "apps", "env")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::Uniqueness(format!("App with the name '{name}' already exists."))
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<App>> {
    let row =
        sqlx::query("SELECT * FROM apps WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(App::from_row).transpose()
}

/// The app of that name in a space (names compare case-insensitively).
pub async fn find_by_name<'e>(
    ex: impl Exec<'e>,
    space: &str,
    name: &str,
) -> ApiResult<Option<App>> {
    let row = sqlx::query("SELECT * FROM apps WHERE space_guid = $1 AND name_key = $2")
        .bind(space)
        .bind(name.to_lowercase())
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(App::from_row).transpose()
}

/// Guids of the apps whose desired state is STARTED.
pub async fn started_guids<'e>(ex: impl Exec<'e>) -> ApiResult<Vec<String>> {
    let rows = sqlx::query("SELECT guid FROM apps WHERE state = $1")
        .bind(AppState::Started.as_str())
        .fetch_all(ex)
        .await?;
    Ok(rows.iter().map(|r| r.try_get("guid")).collect::<Result<_, _>>()?)
}

/// A new app row; a name already used in the space is a uniqueness error.
pub async fn insert<'e>(ex: impl Exec<'e>, app: &App) -> ApiResult<()> {
    let res = sqlx::query(
        "INSERT INTO apps (guid, name, name_key, space_guid, state, lifecycle_type, buildpacks, stack, image, \
         droplet_guid, env, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $9, $10, $11, $12)",
    )
    .bind(&app.guid)
    .bind(&app.name)
    .bind(app.name.to_lowercase())
    .bind(&app.space_guid)
    .bind(app.state.as_str())
    .bind(&app.lifecycle_type)
    .bind(to_json(&app.buildpacks))
    .bind(&app.stack)
    .bind(&app.droplet_guid)
    .bind(to_json(&app.env))
    .bind(app.created_at)
    .bind(app.updated_at)
    .execute(ex)
    .await;
    unique_or(res, || name_taken(&app.name)).map(|_| ())
}

/// Write the app's name, state, buildpacks, stack, droplet, env and `updated_at`.
pub async fn update<'e>(ex: impl Exec<'e>, app: &App) -> ApiResult<()> {
    let res = sqlx::query(
        "UPDATE apps SET name = $1, name_key = $2, state = $3, buildpacks = $4, stack = $5, droplet_guid = $6, \
         env = $7, updated_at = $8 WHERE guid = $9",
    )
    .bind(&app.name)
    .bind(app.name.to_lowercase())
    .bind(app.state.as_str())
    .bind(to_json(&app.buildpacks))
    .bind(&app.stack)
    .bind(&app.droplet_guid)
    .bind(to_json(&app.env))
    .bind(app.updated_at)
    .bind(&app.guid)
    .execute(ex)
    .await;
    unique_or(res, || name_taken(&app.name)).map(|_| ())
}
