//! Accounts of the token issuer: argon2 password hashes, scopes, UAA's lockout (5 failures
//! within 5 minutes lock the account for 5 minutes), and the admin account, which cannot be
//! removed and whose password follows the configuration.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash};
use kit::db::Db;

use crate::store::users::{self as store, Account, ADMIN_USER};

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

impl From<Account> for User {
    fn from(a: Account) -> Self {
        Self {
            guid: a.guid,
            username: a.username,
            email: a.email,
            origin: a.origin,
            scopes: a.scopes,
        }
    }
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

/// The counters after one more failed login at `now`: `(failed, first failure, locked until)`.
/// Failures count within a window from the first; the fifth locks the account.
pub fn after_failure(failed: i64, first_failure_at: i64, now: i64) -> (i64, i64, i64) {
    let (failed, first) = if now - first_failure_at > LOCK_WINDOW_MS {
        (1, now)
    } else {
        (failed + 1, first_failure_at)
    };
    let locked = if failed >= LOCK_AFTER { now + LOCK_FOR_MS } else { 0 };
    (failed, first, locked)
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
        Ok(store::by_name(&self.db, username).await?.map(User::from))
    }

    pub async fn by_guid(&self, guid: &str) -> Result<Option<User>, sqlx::Error> {
        Ok(store::by_guid(&self.db, guid).await?.map(User::from))
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
        store::insert(&self.db, &guid, username, &hash, scopes, now).await?;
        self.by_guid(&guid).await
    }

    /// Remove a user, their refresh tokens and roles; false when there was none. The admin
    /// user cannot be removed.
    pub async fn delete(&self, guid: &str) -> Result<bool, sqlx::Error> {
        match self.by_guid(guid).await? {
            Some(u) if u.username != ADMIN_USER => {}
            _ => return Ok(false),
        }
        store::delete(&self.db, guid).await
    }

    pub async fn set_password(
        &self,
        guid: &str,
        password: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let hash = hash_password(password).map_err(sqlx::Error::Protocol)?;
        store::set_password_hash(&self.db, guid, &hash, now).await
    }

    /// Check a password, counting failures and locking as UAA does.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<Login, sqlx::Error> {
        let Some(account) = store::by_name(&self.db, username).await? else {
            // Same work as a real check, so timing does not tell whether the user exists.
            let _ = verify_password(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
                password,
            );
            return Ok(Login::BadCredentials);
        };
        if account.locked_until > now {
            return Ok(Login::Locked);
        }
        if verify_password(&account.password_hash, password) {
            store::set_failures(&self.db, &account.guid, 0, 0, account.locked_until).await?;
            return Ok(Login::Ok(account.into()));
        }
        let (failed, first, locked) =
            after_failure(account.failed_logins, account.first_failure_at, now);
        store::set_failures(&self.db, &account.guid, failed, first, locked).await?;
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
        store::insert_refresh(&self.db, hash, user, client, expires, now).await
    }

    /// The user of a live refresh token issued to `client`.
    pub async fn refresh_user(
        &self,
        hash: &str,
        client: &str,
        now: i64,
    ) -> Result<Option<User>, sqlx::Error> {
        match store::refresh_owner(&self.db, hash, client, now).await? {
            Some(guid) => self.by_guid(&guid).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_in_the_window_locks_and_a_late_one_starts_over() {
        let t0 = 1_000_000;
        let mut state = (0, 0, 0);
        for i in 1..LOCK_AFTER {
            state = after_failure(state.0, state.1, t0 + i);
            assert_eq!(state.2, 0, "failure {i} locked");
        }
        let locked = after_failure(state.0, state.1, t0 + 10);
        assert_eq!(locked.0, LOCK_AFTER);
        assert_eq!(locked.2, t0 + 10 + LOCK_FOR_MS);
        let later = after_failure(state.0, state.1, state.1 + LOCK_WINDOW_MS + 1);
        assert_eq!(later, (1, state.1 + LOCK_WINDOW_MS + 1, 0));
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash_password("s3cret").expect("hash");
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "other"));
        assert!(!verify_password("not a hash", "s3cret"));
    }
}
