//! The UAA-compatible token issuer: `POST /oauth/token` (password,
//! refresh_token and client_credentials grants), `GET /token_keys`, `GET /userinfo`,
//! `GET /login` (the prompts the cf CLI asks for). Errors in UAA's shape.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use wire::uaa::{
    AppVersion, LoginInfo, OAuthError, ScimEmail, ScimList, ScimUser, TokenGrant, UserInfo,
};

use crate::domain::users::{Login, User, Users};
use crate::store::keys::{SigningKey, KID};

/// Public clients with an empty secret.
const PUBLIC_CLIENTS: [&str; 2] = ["cf", "paas"];
const ACCESS_TTL_SECS: i64 = 7200;
const REFRESH_TTL_SECS: i64 = 1_209_600;
const INTERNAL_SCOPES: [&str; 4] = [
    auth::SCOPE_INTERNAL,
    auth::SCOPE_ADMIN,
    auth::SCOPE_LOGS_ADMIN,
    auth::SCOPE_UPDATE_BUILD_STATE,
];

pub struct Uaa {
    pub users: Users,
    pub key: SigningKey,
    pub issuer: String,
    pub internal_client_id: String,
    pub internal_client_secret: String,
    pub verifier: auth::Verifier,
    /// The api's own component token (for calls to the scheduler and the logs service).
    own: std::sync::Mutex<Option<(String, i64)>>,
}

impl Uaa {
    pub fn new(users: Users, key: SigningKey, external_url: &str, id: &str, secret: &str) -> Self {
        let issuer = format!("{}/oauth/token", external_url.trim_end_matches('/'));
        let verifier = auth::Verifier::with_keys(issuer.clone(), None, &key.jwks);
        Self {
            users,
            key,
            issuer,
            internal_client_id: id.into(),
            internal_client_secret: secret.into(),
            verifier,
            own: std::sync::Mutex::new(None),
        }
    }

    /// A component token of the api itself, reused until ten minutes before it expires.
    pub fn internal_token(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now_ms();
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, exp)) = own.as_ref() {
            if *exp > now + 600_000 {
                return Ok(t.clone());
            }
        }
        let scopes: Vec<String> = INTERNAL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        let (t, _) = sign(self, None, "paas-api", "client_credentials", &scopes, now)?;
        *own = Some((t.clone(), now + ACCESS_TTL_SECS * 1000));
        Ok(t)
    }
}

pub fn routes(uaa: Arc<Uaa>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route(
            "/token_keys",
            get(|State(u): State<Arc<Uaa>>| async move { Json(u.key.jwks.clone()) }),
        )
        .route("/userinfo", get(userinfo))
        .route("/login", get(login_info))
        .route("/Users", post(create_user).get(find_users))
        .route("/Users/{id}", axum::routing::delete(delete_user))
        .route("/Users/{id}/password", axum::routing::put(change_password))
        .with_state(uaa)
}

fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

fn uaa_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthError { error: error.into(), error_description: Some(description.into()) };
    let mut res = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(v) =
            format!("Bearer error=\"{error}\", error_description=\"{description}\"").parse()
        {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    res
}

#[derive(Deserialize, Default)]
struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Client id and secret from HTTP basic auth, else from the form.
fn client(headers: &HeaderMap, form: &TokenForm) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    basic.or_else(|| {
        form.client_id.clone().map(|id| (id, form.client_secret.clone().unwrap_or_default()))
    })
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn token(
    State(u): State<Arc<Uaa>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let Some((client_id, secret)) = client(&headers, &form) else {
        return uaa_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Full authentication is required to access this resource",
        );
    };
    let public = PUBLIC_CLIENTS.contains(&client_id.as_str()) && secret.is_empty();
    let internal = client_id == u.internal_client_id
        && !u.internal_client_secret.is_empty()
        && secret == u.internal_client_secret;
    if !public && !internal {
        return uaa_error(StatusCode::UNAUTHORIZED, "invalid_client", "Bad credentials");
    }
    let now = now_ms();
    match form.grant_type.as_deref() {
        Some("password") if public => {
            let (Some(name), Some(pw)) = (form.username.as_deref(), form.password.as_deref())
            else {
                return uaa_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing username or password",
                );
            };
            match u.users.login(name, pw, now).await {
                Ok(Login::Ok(user)) => {
                    issue_user_tokens(&u, &user, &client_id, "password", now).await
                }
                Ok(Login::BadCredentials) => {
                    uaa_error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials")
                }
                Ok(Login::Locked) => uaa_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Your account has been locked because of too many failed attempts to login.",
                ),
                Err(e) => internal_error(&e),
            }
        }
        Some("refresh_token") if public => {
            let Some(rt) = form.refresh_token.as_deref() else {
                return uaa_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing refresh_token",
                );
            };
            match u.users.refresh_user(&hash(rt), &client_id, now).await {
                Ok(Some(user)) => {
                    issue_user_tokens(&u, &user, &client_id, "refresh_token", now).await
                }
                Ok(None) => {
                    uaa_error(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid refresh token")
                }
                Err(e) => internal_error(&e),
            }
        }
        Some("client_credentials") if internal => {
            let scopes: Vec<String> = INTERNAL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
            match sign(&u, None, &client_id, "client_credentials", &scopes, now) {
                Ok((access, jti)) => Json(TokenGrant {
                    access_token: access,
                    token_type: "bearer".into(),
                    refresh_token: None,
                    expires_in: ACCESS_TTL_SECS - 1,
                    scope: scopes.join(" "),
                    jti,
                })
                .into_response(),
                Err(e) => internal_error(&e),
            }
        }
        Some(other) => uaa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("Unauthorized grant type: {other}"),
        ),
        None => uaa_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing grant type"),
    }
}

fn internal_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "token endpoint failed");
    uaa_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Internal error")
}

fn sign(
    u: &Uaa,
    user: Option<&User>,
    client_id: &str,
    grant: &str,
    scopes: &[String],
    now_ms: i64,
) -> Result<(String, String), jsonwebtoken::errors::Error> {
    let iat = now_ms / 1000;
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let claims = auth::Claims {
        jti: jti.clone(),
        sub: user.map_or_else(|| client_id.to_owned(), |u| u.guid.clone()),
        user_id: user.map(|u| u.guid.clone()),
        user_name: user.map(|u| u.username.clone()),
        email: user.map(|u| u.email.clone()),
        origin: user.map(|u| u.origin.clone()),
        client_id: client_id.into(),
        cid: client_id.into(),
        grant_type: grant.into(),
        scope: scopes.to_vec(),
        aud: vec!["cloud_controller".into(), "openid".into(), client_id.into()],
        iss: u.issuer.clone(),
        iat,
        exp: iat + ACCESS_TTL_SECS,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KID.into());
    Ok((jsonwebtoken::encode(&header, &claims, &u.key.encoding)?, jti))
}

async fn issue_user_tokens(
    u: &Uaa,
    user: &User,
    client_id: &str,
    grant: &str,
    now: i64,
) -> Response {
    let (access, jti) = match sign(u, Some(user), client_id, grant, &user.scopes, now) {
        Ok(t) => t,
        Err(e) => return internal_error(&e),
    };
    let refresh = format!("{}-r", uuid::Uuid::new_v4().simple());
    if let Err(e) = u
        .users
        .store_refresh(&hash(&refresh), &user.guid, client_id, now + REFRESH_TTL_SECS * 1000, now)
        .await
    {
        return internal_error(&e);
    }
    Json(TokenGrant {
        access_token: access,
        token_type: "bearer".into(),
        refresh_token: Some(refresh),
        expires_in: ACCESS_TTL_SECS - 1,
        scope: user.scopes.join(" "),
        jti,
    })
    .into_response()
}

async fn userinfo(State(u): State<Arc<Uaa>>, headers: HeaderMap) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    match u.verifier.verify(auth).await {
        Ok(c) if c.user_id.is_some() => Json(UserInfo {
            user_id: c.user_id,
            sub: c.sub,
            name: c.user_name.clone(),
            user_name: c.user_name,
            email: c.email,
            origin: c.origin,
            zid: "uaa".into(),
        })
        .into_response(),
        _ => uaa_error(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid access token"),
    }
}

async fn login_info() -> Response {
    let prompt = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    Json(LoginInfo {
        app: AppVersion { version: env!("CARGO_PKG_VERSION").into() },
        zone_name: "uaa".into(),
        prompts: [
            ("username".to_owned(), prompt("text", "Email")),
            ("password".to_owned(), prompt("password", "Password")),
        ]
        .into_iter()
        .collect(),
        links: Default::default(),
    })
    .into_response()
}

/// The caller of a SCIM endpoint must be an admin.
async fn scim_admin(u: &Uaa, headers: &HeaderMap) -> Result<(), Response> {
    let h = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    match u.verifier.verify(h).await {
        Ok(c) if c.is_admin() || c.has_scope("scim.write") => Ok(()),
        Ok(_) => Err(uaa_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Insufficient scope for this resource",
        )),
        Err(_) => Err(uaa_error(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid access token")),
    }
}

fn scim_user(user: &User) -> ScimUser {
    ScimUser {
        id: user.guid.clone(),
        user_name: user.username.clone(),
        origin: user.origin.clone(),
        emails: vec![ScimEmail { value: user.email.clone(), primary: true }],
        active: true,
        verified: true,
        schemas: vec!["urn:scim:schemas:core:1.0".into()],
    }
}

/// `POST /Users` (cf create-user): `{userName, password, emails?}`.
async fn create_user(
    State(u): State<Arc<Uaa>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = scim_admin(&u, &headers).await {
        return r;
    }
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return uaa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("invalid JSON: {e}"),
            )
        }
    };
    let name = v.get("userName").and_then(|n| n.as_str()).unwrap_or_default().trim();
    let password = v.get("password").and_then(|n| n.as_str()).unwrap_or_default();
    if name.is_empty() || name.len() > 255 || password.is_empty() {
        return uaa_error(
            StatusCode::BAD_REQUEST,
            "invalid_scim_resource",
            "A username and a password are required",
        );
    }
    match u.users.create(name, password, crate::domain::users::USER_SCOPES, now_ms()).await {
        Ok(Some(user)) => (StatusCode::CREATED, Json(scim_user(&user))).into_response(),
        Ok(None) => uaa_error(
            StatusCode::CONFLICT,
            "scim_resource_already_exists",
            "Username already in use",
        ),
        Err(e) => internal_error(&e),
    }
}

#[derive(Deserialize)]
struct ScimQuery {
    filter: Option<String>,
}

/// `GET /Users?filter=userName eq "x"` (only that filter form).
async fn find_users(
    State(u): State<Arc<Uaa>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ScimQuery>,
) -> Response {
    if let Err(r) = scim_admin(&u, &headers).await {
        return r;
    }
    let wanted = q.filter.as_deref().and_then(|f| {
        let f = f.trim();
        let rest = f.strip_prefix("userName eq ").or_else(|| f.strip_prefix("username eq "))?;
        Some(rest.trim_matches(|c| c == '"' || c == '\'').to_owned())
    });
    let Some(name) = wanted else {
        return uaa_error(
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            "Only filter=userName eq \"<name>\" is supported",
        );
    };
    match u.users.by_name(&name).await {
        Ok(found) => {
            let resources: Vec<ScimUser> = found.iter().map(scim_user).collect();
            let list = ScimList {
                total_results: resources.len(),
                resources,
                start_index: 1,
                items_per_page: 100,
            };
            Json(list).into_response()
        }
        Err(e) => internal_error(&e),
    }
}

async fn delete_user(
    State(u): State<Arc<Uaa>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(r) = scim_admin(&u, &headers).await {
        return r;
    }
    match u.users.delete(&id).await {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => uaa_error(StatusCode::NOT_FOUND, "scim_resource_not_found", "User not found"),
        Err(e) => internal_error(&e),
    }
}

/// `PUT /Users/:id/password` (cf passwd): `{oldPassword, password}`. A user changes their own
/// password, proving the old one (failures count towards the lockout as logins do); an admin
/// sets anyone's without it.
async fn change_password(
    State(u): State<Arc<Uaa>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let h = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Ok(caller) = u.verifier.verify(h).await else {
        return uaa_error(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid access token");
    };
    let admin = caller.is_admin() || caller.has_scope("scim.write");
    if !admin && caller.user_id.as_deref() != Some(id.as_str()) {
        return uaa_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "Not permitted to change the password of another user",
        );
    }
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return uaa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("invalid JSON: {e}"),
            )
        }
    };
    let new = v.get("password").and_then(|p| p.as_str()).unwrap_or_default();
    let old = v.get("oldPassword").and_then(|p| p.as_str());
    if new.is_empty() || new.len() > 255 {
        return uaa_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
            "The new password must be 1 to 255 characters",
        );
    }
    let user = match u.users.by_guid(&id).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return uaa_error(StatusCode::NOT_FOUND, "scim_resource_not_found", "User not found")
        }
        Err(e) => return internal_error(&e),
    };
    let own = caller.user_id.as_deref() == Some(id.as_str());
    if own || !admin {
        let Some(old) = old else {
            return uaa_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_password",
                "The old password is required",
            );
        };
        match u.users.login(&user.username, old, now_ms()).await {
            Ok(Login::Ok(_)) => {}
            Ok(Login::BadCredentials) => {
                return uaa_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Old password is incorrect",
                )
            }
            Ok(Login::Locked) => {
                return uaa_error(
                    StatusCode::FORBIDDEN,
                    "account_locked",
                    "Your account has been locked because of too many failed attempts to login.",
                )
            }
            Err(e) => return internal_error(&e),
        }
        if old == new {
            return uaa_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_password",
                "Your new password cannot be the same as the old password.",
            );
        }
    }
    match u.users.set_password(&user.guid, new, now_ms()).await {
        Ok(()) => {
            Json(serde_json::json!({"status": "ok", "message": "password updated"})).into_response()
        }
        Err(e) => internal_error(&e),
    }
}
