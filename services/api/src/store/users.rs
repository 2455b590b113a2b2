//! Users and their credentials: argon2 password hashes, scopes, and UAA's lockout (5 failures
//! within 5 minutes lock the account for 5 minutes).

/// The platform administrator created on first start.
pub const ADMIN_USER: &str = "admin";

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash};
use kit::db::Db;
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// Scopes every user has.
pub const USER_SCOPES: &str =
    "openid cloud_controller.read cloud_controller.write uaa.user scim.me";
/// Scopes of the platform admin on top.
pub const ADMIN_SCOPES: &str =
    "cloud_controller.admin logs.admin doppler.firehose scim.read scim.write";

pub const LOCK_AFTER: i64 = 5;
pub const LOCK_WINDOW_MS: i64 = 5 * 60 * 1000;
pub const LOCK_FOR_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub guid: String,
    pub username: String,
    pub email: String,
    pub origin: String,
    pub scopes: Vec<String>,
}

/// The result of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    Ok(User),
    BadCredentials,
    Locked,
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn decode(r: &AnyRow) -> Result<User, sqlx::Error> {
    let scopes: String = r.try_get("scopes")?;
    Ok(User {
        guid: r.try_get("guid")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        origin: r.try_get("origin")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
    })
}

#[derive(Clone)]
pub struct Users {
    db: Db,
}

impl Users {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn by_name(&self, username: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM users WHERE LOWER(username) = LOWER($1)")
            .bind(username)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn by_guid(&self, guid: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM users WHERE guid = $1")
            .bind(guid)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Create a user; `Ok(None)` when the name is taken.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        scopes: &str,
        now: i64,
    ) -> Result<Option<User>, sqlx::Error> {
        if self.by_name(username).await?.is_some() {
            return Ok(None);
        }
        let hash = hash_password(password).map_err(sqlx::Error::Protocol)?;
        let guid = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO users (guid, username, email, origin, password_hash, scopes, failed_logins, \
             first_failure_at, locked_until, created_at, updated_at) VALUES ($1, $2, $3, 'uaa', $4, $5, 0, 0, 0, $6, $6)",
        )
        .bind(&guid)
        .bind(username)
        .bind(username)
        .bind(hash)
        .bind(scopes)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        self.by_guid(&guid).await
    }

    /// Remove a user, their refresh tokens and roles; false when there was none. The admin
    /// user cannot be removed.
    pub async fn delete(&self, guid: &str) -> Result<bool, sqlx::Error> {
        match self.by_guid(guid).await? {
            Some(u) if u.username != ADMIN_USER => {}
            _ => return Ok(false),
        }
        sqlx::query("DELETE FROM refresh_tokens WHERE user_guid = $1")
            .bind(guid)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("DELETE FROM roles WHERE user_guid = $1")
            .bind(guid)
            .execute(&self.db.pool)
            .await?;
        let r = sqlx::query("DELETE FROM users WHERE guid = $1")
            .bind(guid)
            .execute(&self.db.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_password(
        &self,
        guid: &str,
        password: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let hash = hash_password(password).map_err(sqlx::Error::Protocol)?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE guid = $1")
            .bind(guid)
            .bind(hash)
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_guid = $1")
            .bind(guid)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Check a password, counting failures and locking as UAA does.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<Login, sqlx::Error> {
        let Some(row) = sqlx::query("SELECT * FROM users WHERE LOWER(username) = LOWER($1)")
            .bind(username)
            .fetch_optional(&self.db.pool)
            .await?
        else {
            // Same work as a real check, so timing does not tell whether the user exists.
            let _ = verify_password(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
                password,
            );
            return Ok(Login::BadCredentials);
        };
        let user = decode(&row)?;
        let locked_until: i64 = row.try_get("locked_until")?;
        if locked_until > now {
            return Ok(Login::Locked);
        }
        let hash: String = row.try_get("password_hash")?;
        if verify_password(&hash, password) {
            sqlx::query("UPDATE users SET failed_logins = 0, first_failure_at = 0 WHERE guid = $1")
                .bind(&user.guid)
                .execute(&self.db.pool)
                .await?;
            return Ok(Login::Ok(user));
        }
        let failed: i64 = row.try_get("failed_logins")?;
        let first: i64 = row.try_get("first_failure_at")?;
        let (failed, first) =
            if now - first > LOCK_WINDOW_MS { (1, now) } else { (failed + 1, first) };
        let locked = if failed >= LOCK_AFTER { now + LOCK_FOR_MS } else { 0 };
        sqlx::query("UPDATE users SET failed_logins = $2, first_failure_at = $3, locked_until = $4 WHERE guid = $1")
            .bind(&user.guid)
            .bind(failed)
            .bind(first)
            .bind(locked)
            .execute(&self.db.pool)
            .await?;
        Ok(if locked > 0 { Login::Locked } else { Login::BadCredentials })
    }

    /// Make sure `admin` exists with `password` (created, or its password updated).
    pub async fn ensure_admin(&self, password: &str, now: i64) -> Result<User, sqlx::Error> {
        let scopes = format!("{USER_SCOPES} {ADMIN_SCOPES}");
        match self.by_name(ADMIN_USER).await? {
            None => self
                .create(ADMIN_USER, password, &scopes, now)
                .await?
                .ok_or_else(|| sqlx::Error::Protocol("admin appeared concurrently".into())),
            Some(u) => {
                if !matches!(self.login(&u.username, password, now).await?, Login::Ok(_)) {
                    self.set_password(&u.guid, password, now).await?;
                }
                Ok(u)
            }
        }
    }

    pub async fn store_refresh(
        &self,
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
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// The user of a live refresh token issued to `client`.
    pub async fn refresh_user(
        &self,
        hash: &str,
        client: &str,
        now: i64,
    ) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT user_guid FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2 AND expires_at > $3")
            .bind(hash)
            .bind(client)
            .bind(now)
            .fetch_optional(&self.db.pool)
            .await?;
        match row {
            Some(r) => self.by_guid(&r.try_get::<String, _>("user_guid")?).await,
            None => Ok(None),
        }
    }
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
    let (total, rows) = sel.page(db, w).await?;
    Ok((total, rows.iter().map(UserRef::from_row).collect::<Result<_, _>>()?))
}
