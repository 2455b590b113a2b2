//! SQL storage on SQLite (embedded default) or PostgreSQL (deployments), through one sqlx
//! `AnyPool`. Queries use `$1`-style placeholders, which both engines accept; migrations are
//! kept per engine (`migrations/<service>/<engine>/`) and embedded in the binary.

use std::borrow::Cow;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::AnyPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url must start with sqlite: or postgres: (got {0:?})")]
    BadUrl(String),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrating database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// One embedded migration: version, description, SQL.
pub type EmbeddedMigration = (i64, &'static str, &'static str);

/// A connection pool plus the engine behind it.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
}

impl Db {
    /// Connect (creating a SQLite file if missing) with up to `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url).ok_or_else(|| DbError::BadUrl(url.to_owned()))?;
        let url = match engine {
            Engine::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite {
                max_connections.min(8)
            } else {
                max_connections
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        if engine == Engine::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        Ok(Self { pool, engine })
    }

    /// Apply the migrations for this engine that have not run yet.
    pub async fn migrate(
        &self,
        sqlite: &'static [EmbeddedMigration],
        postgres: &'static [EmbeddedMigration],
    ) -> Result<(), DbError> {
        let list = match self.engine {
            Engine::Sqlite => sqlite,
            Engine::Postgres => postgres,
        };
        let migrations: Vec<Migration> = list
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// Embed a service's migrations for both engines:
/// `kit::migrations!("api", [(1, "init", "0001_init.sql")])` reads
/// `migrations/api/sqlite/0001_init.sql` and `migrations/api/postgres/0001_init.sql` relative
/// to the workspace root and yields `(SQLITE, POSTGRES)` slices for [`Db::migrate`].
#[macro_export]
macro_rules! migrations {
    ($service:literal, [$(($v:literal, $desc:literal, $file:literal)),* $(,)?]) => {{
        const SQLITE: &[$crate::db::EmbeddedMigration] = &[$(($v, $desc, include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"), "/../../migrations/", $service, "/sqlite/", $file
        )))),*];
        const POSTGRES: &[$crate::db::EmbeddedMigration] = &[$(($v, $desc, include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"), "/../../migrations/", $service, "/postgres/", $file
        )))),*];
        (SQLITE, POSTGRES)
    }};
}
