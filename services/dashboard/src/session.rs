//! Server-side sessions: the browser holds only a random id in an `HttpOnly; SameSite=Strict`
//! cookie; the tokens stay here. Each session has its own CSRF token, which every
//! state-changing request must send back in the `X-CSRF-Token` header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore as _;

pub const COOKIE: &str = "paas_session";
/// The cookie that carries the sign-in form's CSRF token (double submit) before a session exists.
pub const LOGIN_COOKIE: &str = "paas_login_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// 32 random bytes, hex.
pub fn random_id() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Compare without leaking where two secrets differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_name: String,
    pub admin: bool,
    pub csrf: String,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token stops being accepted.
    pub access_expires: Instant,
    pub created: Instant,
    pub last_used: Instant,
}

impl Session {
    pub fn access_expiring(&self, now: Instant) -> bool {
        now + Duration::from_secs(30) >= self.access_expires
    }
}

/// All sessions of this dashboard, in memory (a restart signs everyone out).
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
    idle: Duration,
    max: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Self {
        Self { inner: Arc::default(), idle, max }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Store a new session; returns its id.
    pub fn create(&self, session: Session) -> String {
        let id = random_id();
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| !self.expired(s, now));
        map.insert(id.clone(), session);
        id
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) > self.idle || now.duration_since(s.created) > self.max
    }

    /// The live session with this id (touched), or none: unknown, idle too long or too old.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    pub fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        if self.expired(s, now) {
            map.remove(id);
            return None;
        }
        s.last_used = now;
        Some(s.clone())
    }

    /// Replace the tokens of a session after a refresh.
    pub fn update_tokens(&self, id: &str, access: String, refresh: String, expires: Instant) {
        if let Some(s) = self.lock().get_mut(id) {
            s.access_token = access;
            s.refresh_token = refresh;
            s.access_expires = expires;
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for `name`; an empty value with max-age 0 clears it.
pub fn set_cookie(name: &str, value: &str, secure: bool) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if value.is_empty() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: Instant) -> Session {
        Session {
            user_name: "ann".into(),
            admin: false,
            csrf: random_id(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires: now + Duration::from_secs(600),
            created: now,
            last_used: now,
        }
    }

    #[test]
    fn sessions_expire_when_idle_or_too_old() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let now = Instant::now();
        let id = s.create(session(now));
        assert_eq!(id.len(), 64);
        assert!(s.get_at(&id, now + Duration::from_secs(50)).is_some());
        assert!(s.get_at(&id, now + Duration::from_secs(100)).is_some(), "touched at 50 s");
        assert!(s.get_at(&id, now + Duration::from_secs(161)).is_none(), "idle for 61 s");
        assert!(s.get_at(&id, now).is_none(), "and gone");

        let id = s.create(session(now));
        for t in (0..=300).step_by(30) {
            assert!(s.get_at(&id, now + Duration::from_secs(t)).is_some());
        }
        assert!(s.get_at(&id, now + Duration::from_secs(301)).is_none(), "older than max");
        assert!(s.get("not-an-id").is_none());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", ""));
    }

    #[test]
    fn cookies_are_found_and_set_strictly() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("cookie", "a=1; paas_session=xyz; b=2".parse().expect("header"));
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(COOKIE, "xyz", true);
        assert_eq!(c, "paas_session=xyz; HttpOnly; SameSite=Strict; Path=/; Secure");
        assert!(set_cookie(COOKIE, "", false).contains("Max-Age=0"));
    }
}
