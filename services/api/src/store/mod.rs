//! The store: the api database, one file per table family (rows, decoding, find / require /
//! insert / update / delete). It is the only place in the api with SQL, and it decides nothing:
//! no access checks, no CF rules, no calls to other services.
//!
//! Every function runs on an [`Exec`]: the pool for a single statement, or `&mut *tx` inside a
//! [`Tx`] so a multi-statement change commits whole or not at all. A row that does not decode
//! is an [`ApiError::Corrupt`] naming its table and id, never a default value.

pub mod apps;
pub mod brokers;
pub mod buildpacks;
pub mod builds;
pub mod cascade;
pub mod deployments;
pub mod domains;
pub mod droplets;
pub mod env_groups;
pub mod events;
pub mod feature_flags;
pub mod jobs;
pub mod keys;
pub mod metadata;
pub mod orgs;
pub mod packages;
pub mod processes;
pub mod quotas;
pub mod revisions;
pub mod roles;
pub mod route_bindings;
pub mod routes;
pub mod select;
pub mod services;
pub mod space_quotas;
pub mod spaces;
pub mod ssh;
pub mod tasks;
pub mod usage_events;
pub mod users;

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::error::{ApiError, ApiResult};

pub use select::{Select, Window};

/// Anything a query runs on: `&db.pool`, or a transaction's connection (`&mut *tx`).
pub trait Exec<'e>: sqlx::Executor<'e, Database = sqlx::Any> {}
impl<'e, T: sqlx::Executor<'e, Database = sqlx::Any>> Exec<'e> for T {}

/// A transaction; dropped without [`Tx::commit`] it rolls back.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Start a transaction on the api database.
pub async fn begin(db: &kit::db::Db) -> ApiResult<Tx> {
    Ok(match db.engine {
        // The write lock at `BEGIN`, where the busy timeout applies: a deferred transaction
        // that reads and then writes after another connection committed fails at once
        // (`SQLITE_BUSY`) instead of waiting its turn.
        kit::db::Engine::Sqlite => db.pool.begin_with("BEGIN IMMEDIATE").await?,
        kit::db::Engine::Postgres => db.pool.begin().await?,
    })
}

/// Milliseconds since the epoch: every row's `created_at` / `updated_at`.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A new resource guid.
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether a statement failed on a unique constraint (both engines).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE")
                || d.message().contains("duplicate key")
        }
        _ => false,
    }
}

/// The result of a write, with a unique violation turned into `conflict()`.
pub fn unique_or<T>(
    res: Result<T, sqlx::Error>,
    conflict: impl FnOnce() -> ApiError,
) -> ApiResult<T> {
    match res {
        Err(e) if is_unique_violation(&e) => Err(conflict()),
        r => Ok(r?),
    }
}

/// A JSON text column decoded, or [`ApiError::Corrupt`] naming the table, row and column.
pub fn json_col<T: DeserializeOwned>(r: &AnyRow, table: &'static str, col: &str) -> ApiResult<T> {
    let raw: String = r.try_get(col)?;
    serde_json::from_str(&raw).map_err(|e| ApiError::Corrupt {
        table,
        id: r.try_get::<String, _>("guid").unwrap_or_else(|_| "?".into()),
        detail: format!("column {col}: {e}"),
    })
}

/// A state column decoded with `parse` (a `wire::v3` state's), or [`ApiError::Corrupt`].
pub fn state_col<T>(
    r: &AnyRow,
    table: &'static str,
    col: &str,
    parse: fn(&str) -> Option<T>,
) -> ApiResult<T> {
    let raw: String = r.try_get(col)?;
    parse(&raw).ok_or_else(|| ApiError::Corrupt {
        table,
        id: r.try_get::<String, _>("guid").unwrap_or_else(|_| "?".into()),
        detail: format!("column {col}: unknown state '{raw}'"),
    })
}

/// A value's JSON text for a JSON column.
pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Decode every row with `f`.
pub fn decode<T>(rows: &[AnyRow], f: impl Fn(&AnyRow) -> ApiResult<T>) -> ApiResult<Vec<T>> {
    rows.iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn guids_are_uuids_and_clock_is_in_ms() {
        assert_eq!(super::new_guid().len(), 36);
        assert!(super::now_ms() > 1_700_000_000_000);
    }
}
