//! The `users` and `refresh_tokens` tables: accounts with their password hash, scopes and
//! failed-login counters, and the refresh tokens issued to them. The rules (hashing, lockout,
//! the admin account) are `domain::users`.

use kit::db::Db;
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// The platform administrator created on first start.
pub const ADMIN_USER: &str = "admin";

/// An account as the token issuer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub guid: String,
    pub username: String,
    pub email: String,
    pub origin: String,
    pub scopes: Vec<String>,
    pub password_hash: String,
    pub failed_logins: i64,
    pub first_failure_at: i64,
    pub locked_until: i64,
}

fn decode(r: &AnyRow) -> Result<Account, sqlx::Error> {
    let scopes: String = r.try_get("scopes")?;
    Ok(Account {
        guid: r.try_get("guid")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        origin: r.try_get("origin")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        password_hash: r.try_get("password_hash")?,
        failed_logins: r.try_get("failed_logins")?,
        first_failure_at: r.try_get("first_failure_at")?,
        locked_until: r.try_get("locked_until")?,
    })
}

/// The account named `username`, in any case.
pub async fn by_name(db: &Db, username: &str) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM users WHERE LOWER(username) = LOWER($1)")
        .bind(username)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(decode).transpose()
}

pub async fn by_guid(db: &Db, guid: &str) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM users WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// A new account (origin `uaa`, email = username).
pub async fn insert(
    db: &Db,
    guid: &str,
    username: &str,
    password_hash: &str,
    scopes: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (guid, username, email, origin, password_hash, scopes, failed_logins, \
         first_failure_at, locked_until, created_at, updated_at) VALUES ($1, $2, $3, 'uaa', $4, $5, 0, 0, 0, $6, $6)",
    )
    .bind(guid)
    .bind(username)
    .bind(username)
    .bind(password_hash)
    .bind(scopes)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// An account with its refresh tokens and roles, in one transaction; whether there was one.
pub async fn delete(db: &Db, guid: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE user_guid = $1")
        .bind(guid)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM roles WHERE user_guid = $1").bind(guid).execute(&mut *tx).await?;
    let r = sqlx::query("DELETE FROM users WHERE guid = $1").bind(guid).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

/// A new password hash, and the account's refresh tokens gone, in one transaction.
pub async fn set_password_hash(
    db: &Db,
    guid: &str,
    hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE guid = $1")
        .bind(guid)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE user_guid = $1")
        .bind(guid)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The failed-login counters of an account.
pub async fn set_failures(
    db: &Db,
    guid: &str,
    failed: i64,
    first_failure_at: i64,
    locked_until: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET failed_logins = $2, first_failure_at = $3, locked_until = $4 WHERE guid = $1",
    )
    .bind(guid)
    .bind(failed)
    .bind(first_failure_at)
    .bind(locked_until)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn insert_refresh(
    db: &Db,
    hash: &str,
    user: &str,
    client: &str,
    expires: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_guid, client_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(user)
    .bind(client)
    .bind(expires)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The account of a live refresh token issued to `client`.
pub async fn refresh_owner(
    db: &Db,
    hash: &str,
    client: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_guid FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2 AND expires_at > $3",
    )
    .bind(hash)
    .bind(client)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| r.try_get("user_guid")).transpose()
}

/// A user as `/v3/users` shows it.
#[derive(Debug, Clone)]
pub struct UserRef {
    pub guid: String,
    pub username: String,
    pub origin: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRef {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            guid: r.try_get("guid")?,
            username: r.try_get("username")?,
            origin: r.try_get("origin")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

const USER_REF: &str = "SELECT guid, username, origin, created_at, updated_at FROM users";

/// The user with `guid`.
pub async fn find_ref(db: &Db, guid: &str) -> Result<Option<UserRef>, sqlx::Error> {
    let row = sqlx::query(&format!("{USER_REF} WHERE guid = $1"))
        .bind(guid)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(UserRef::from_row).transpose()
}

/// The user named `username` at `origin`.
pub async fn find_ref_by_name(
    db: &Db,
    username: &str,
    origin: &str,
) -> Result<Option<UserRef>, sqlx::Error> {
    let row = sqlx::query(&format!("{USER_REF} WHERE username = $1 AND origin = $2"))
        .bind(username)
        .bind(origin)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(UserRef::from_row).transpose()
}

/// One page of the users `sel` selects.
pub async fn page(
    db: &Db,
    sel: &crate::store::Select,
    w: &crate::store::Window,
) -> crate::error::ApiResult<(i64, Vec<UserRef>)> {
    sel.page_of(db, w, UserRef::from_row).await
}
