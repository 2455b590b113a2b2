//! Routes, sign-in and sign-out, the session guard and the security headers every answer gets.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use crate::session::{self, Session};
use crate::{admin, assets, logs, proxy, AppState};

pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(shell))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/session", get(whoami))
        .route("/assets/{name}", get(assets::serve))
        .route("/api/v3/{*rest}", any(proxy::forward))
        .route("/logs/{app}/stream", get(logs::stream))
        .route("/admin/cells", get(admin::cells))
        .route("/admin/routes", get(admin::routes))
        .route("/admin/health", get(admin::health))
        .route("/admin/logs/sources", get(admin::log_sources))
        .route("/admin/logs/stream", get(admin::log_stream))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// CSP, no sniffing, no framing, no referrer; nothing but assets is cached.
async fn security_headers(req: Request, next: Next) -> Response {
    let asset = req.uri().path().starts_with("/assets/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The signed-in session of this request, with its id.
pub(crate) fn current(state: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = session::cookie(headers, session::COOKIE)?;
    state.sessions.get(id).map(|s| (id.to_owned(), s))
}

/// Why a request is refused before it reaches anything behind the dashboard.
pub(crate) enum Refused {
    /// No live session: sign in (401; pages redirect).
    SignIn,
    /// A state-changing request without the session's CSRF token.
    Csrf,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignIn => json_error(StatusCode::UNAUTHORIZED, "sign in first"),
            Refused::Csrf => json_error(StatusCode::FORBIDDEN, "missing or wrong CSRF token"),
        }
    }
}

/// The session, checked for the CSRF header when `method` changes state.
pub(crate) fn guard(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<(String, Session), Refused> {
    let (id, s) = current(state, headers).ok_or(Refused::SignIn)?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers.get(session::CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !session::same_secret(sent, &s.csrf) {
            return Err(Refused::Csrf);
        }
    }
    Ok((id, s))
}

/// The session's access token, refreshed first when it expires soon, or when the api refused
/// `stale` (the token last used). A refused refresh ends the session.
pub(crate) async fn bearer(
    state: &AppState,
    id: &str,
    stale: Option<&str>,
) -> Result<String, Refused> {
    let fresh = |s: &Session| {
        !s.access_expiring(Instant::now()) && stale.is_none_or(|t| t != s.access_token)
    };
    let s = state.sessions.get(id).ok_or(Refused::SignIn)?;
    if fresh(&s) {
        return Ok(s.access_token);
    }
    let _one = state.refreshing.lock().await;
    let s = state.sessions.get(id).ok_or(Refused::SignIn)?;
    if fresh(&s) {
        return Ok(s.access_token);
    }
    if s.refresh_token.is_empty() {
        state.sessions.remove(id);
        return Err(Refused::SignIn);
    }
    match grant(state, &[("grant_type", "refresh_token"), ("refresh_token", &s.refresh_token)])
        .await
    {
        Ok(g) => {
            let expires = Instant::now() + Duration::from_secs(g.expires_in.max(0) as u64);
            let refresh = g.refresh_token.unwrap_or(s.refresh_token);
            state.sessions.update_tokens(id, g.access_token.clone(), refresh, expires);
            Ok(g.access_token)
        }
        Err(_) => {
            state.sessions.remove(id);
            Err(Refused::SignIn)
        }
    }
}

/// `POST /oauth/token` as the dashboard's client.
async fn grant(state: &AppState, form: &[(&str, &str)]) -> Result<wire::uaa::TokenGrant, String> {
    let res = state
        .http
        .post(format!("{}/oauth/token", state.api()))
        .basic_auth(&state.cfg.client_id, Some(""))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| format!("the token issuer is unreachable: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("refused ({})", res.status().as_u16()));
    }
    res.json().await.map_err(|e| e.to_string())
}

fn cookie_header(state: &AppState, name: &str, value: &str) -> (header::HeaderName, String) {
    (header::SET_COOKIE, session::set_cookie(name, value, state.cfg.secure_cookies))
}

/// The app's shell, or the sign-in page without a session.
async fn shell(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if current(&state, &headers).is_none() {
        return Redirect::to("/login").into_response();
    }
    assets::html(assets::INDEX)
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    failed: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    if current(&state, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    let csrf = session::random_id();
    let message = match q.failed.as_deref() {
        Some("credentials") => "Those credentials were not accepted.",
        Some("csrf") => "The sign-in form expired; please try again.",
        Some(_) => "Sign-in failed; please try again.",
        None => "",
    };
    let page = assets::LOGIN
        .replace("{{csrf}}", &csrf)
        .replace("{{message}}", message)
        .replace("{{hidden}}", if message.is_empty() { "hidden" } else { "" });
    ([cookie_header(&state, session::LOGIN_COOKIE, &csrf)], assets::html_owned(page))
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or("");
    if !session::same_secret(&f.csrf, expected) {
        return Redirect::to("/login?failed=csrf").into_response();
    }
    let g = match grant(
        &state,
        &[("grant_type", "password"), ("username", &f.username), ("password", &f.password)],
    )
    .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::info!(user = %f.username, error = %e, "sign-in refused");
            return Redirect::to("/login?failed=credentials").into_response();
        }
    };
    let claims = match state.verifier.verify(&format!("bearer {}", g.access_token)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the token issuer's token does not verify");
            return Redirect::to("/login?failed=token").into_response();
        }
    };
    let now = Instant::now();
    let id = state.sessions.create(Session {
        user_name: claims.actor_name().to_owned(),
        admin: claims.is_admin(),
        csrf: session::random_id(),
        access_token: g.access_token,
        refresh_token: g.refresh_token.unwrap_or_default(),
        access_expires: now + Duration::from_secs(g.expires_in.max(0) as u64),
        created: now,
        last_used: now,
    });
    let mut res = Redirect::to("/").into_response();
    let h = res.headers_mut();
    for (name, value) in [(session::COOKIE, id.as_str()), (session::LOGIN_COOKIE, "")] {
        if let Ok(v) =
            HeaderValue::from_str(&session::set_cookie(name, value, state.cfg.secure_cookies))
        {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match guard(&state, &headers, &Method::POST) {
        Ok((id, _)) => {
            state.sessions.remove(&id);
            (StatusCode::NO_CONTENT, [cookie_header(&state, session::COOKIE, "")]).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// Who is signed in, and the CSRF token the page sends back.
async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match current(&state, &headers) {
        Some((_, s)) => Json(serde_json::json!({
            "user_name": s.user_name,
            "admin": s.admin,
            "csrf": s.csrf,
        }))
        .into_response(),
        None => Refused::SignIn.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    /// A fake api: the token issuer answers refresh grants for `good-refresh` only, and
    /// `/v3/whoami` echoes the bearer token it was sent.
    async fn fake_api() -> String {
        let app = Router::new()
            .route(
                "/oauth/token",
                post(|Form(f): Form<std::collections::HashMap<String, String>>| async move {
                    if f.get("refresh_token").map(String::as_str) == Some("good-refresh") {
                        Json(serde_json::json!({
                            "access_token": "fresh-access", "token_type": "bearer",
                            "refresh_token": "next-refresh", "expires_in": 600
                        }))
                        .into_response()
                    } else {
                        (StatusCode::UNAUTHORIZED, "{}").into_response()
                    }
                }),
            )
            .route(
                "/v3/whoami",
                any(|h: HeaderMap| async move {
                    let a = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    Json(serde_json::json!({ "authorization": a }))
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    fn state(api: &str) -> AppState {
        AppState::new(crate::Config {
            api_url: api.into(),
            session_idle_secs: 600,
            ..Default::default()
        })
        .expect("state")
    }

    fn session(access_in: i64) -> Session {
        let now = Instant::now();
        let access_expires = if access_in >= 0 {
            now + Duration::from_secs(access_in as u64)
        } else {
            now.checked_sub(Duration::from_secs((-access_in) as u64)).unwrap_or(now)
        };
        Session {
            user_name: "ann".into(),
            admin: false,
            csrf: session::random_id(),
            access_token: "old-access".into(),
            refresh_token: "good-refresh".into(),
            access_expires,
            created: now,
            last_used: now,
        }
    }

    async fn call(
        state: &AppState,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        csrf: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{}={c}", session::COOKIE));
        }
        if let Some(t) = csrf {
            req = req.header(session::CSRF_HEADER, t);
        }
        let res = routes(state.clone())
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn changes_need_the_sessions_csrf_token() {
        let api = fake_api().await;
        let st = state(&api);
        let s = session(600);
        let csrf = s.csrf.clone();
        let id = st.sessions.create(s);
        let path = "/api/v3/whoami";
        assert_eq!(call(&st, "POST", path, Some(&id), None).await.0, StatusCode::FORBIDDEN);
        let wrong = session::random_id();
        assert_eq!(call(&st, "POST", path, Some(&id), Some(&wrong)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(call(&st, "DELETE", path, Some(&id), Some("")).await.0, StatusCode::FORBIDDEN);
        let (status, _, body) = call(&st, "POST", path, Some(&id), Some(&csrf)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("Bearer old-access"), "{body}");
        // Reads need no CSRF token; without a session nothing passes.
        assert_eq!(call(&st, "GET", path, Some(&id), None).await.0, StatusCode::OK);
        assert_eq!(call(&st, "GET", path, None, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&st, "POST", path, None, Some(&csrf)).await.0, StatusCode::UNAUTHORIZED);
        // Another session's CSRF token is no good either.
        let other = session(600);
        let other_csrf = other.csrf.clone();
        st.sessions.create(other);
        assert_eq!(
            call(&st, "POST", path, Some(&id), Some(&other_csrf)).await.0,
            StatusCode::FORBIDDEN
        );
        // Sign-out is a change too.
        assert_eq!(call(&st, "POST", "/logout", Some(&id), None).await.0, StatusCode::FORBIDDEN);
        let (status, headers, _) = call(&st, "POST", "/logout", Some(&id), Some(&csrf)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let cleared = headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(cleared.starts_with("paas_session=;") && cleared.contains("Max-Age=0"));
        assert_eq!(call(&st, "GET", path, Some(&id), None).await.0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn an_expired_session_goes_back_to_sign_in() {
        let st = AppState::new(crate::Config {
            api_url: "http://127.0.0.1:9".into(),
            session_idle_secs: 60,
            ..Default::default()
        })
        .expect("state");
        let mut s = session(600);
        let past = Instant::now().checked_sub(Duration::from_secs(120)).expect("past");
        s.last_used = past;
        s.created = past;
        let id = st.sessions.create(s);
        let (status, headers, _) = call(&st, "GET", "/", Some(&id), None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers.get("location").and_then(|v| v.to_str().ok()), Some("/login"));
        assert_eq!(call(&st, "GET", "/session", Some(&id), None).await.0, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(&st, "GET", "/api/v3/apps", Some(&id), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&st, "GET", "/", Some("made-up"), None).await.0, StatusCode::SEE_OTHER);
        // A live one gets the page.
        let id = st.sessions.create(session(600));
        let (status, _, body) = call(&st, "GET", "/", Some(&id), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<main"), "{body}");
    }

    #[tokio::test]
    async fn an_expired_access_token_is_refreshed_and_a_refused_refresh_signs_out() {
        let api = fake_api().await;
        let st = state(&api);
        let id = st.sessions.create(session(-10));
        let (status, _, body) = call(&st, "GET", "/api/v3/whoami", Some(&id), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Bearer fresh-access"), "{body}");
        let s = st.sessions.get(&id).expect("still signed in");
        assert_eq!(s.refresh_token, "next-refresh");
        // `next-refresh` is refused by the fake issuer: the next refresh ends the session.
        st.sessions.update_tokens(&id, "x".into(), "next-refresh".into(), Instant::now());
        let (status, _, _) = call(&st, "GET", "/api/v3/whoami", Some(&id), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(st.sessions.get(&id).is_none());
    }

    #[tokio::test]
    async fn sign_in_needs_the_forms_csrf_cookie_and_pages_carry_security_headers() {
        let st = state("http://127.0.0.1:9");
        let (status, headers, body) = call(&st, "GET", "/login", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let set = headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(set.starts_with("paas_login_csrf=") && set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
        assert!(body.contains("name=\"csrf\""), "{body}");
        assert_eq!(headers.get("content-security-policy").and_then(|v| v.to_str().ok()), Some(CSP));
        assert_eq!(
            headers.get("x-content-type-options").and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        assert_eq!(headers.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));

        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", "paas_login_csrf=aaaa")
            .body(Body::from("username=ann&password=pw&csrf=bbbb"))
            .expect("request");
        let res = routes(st.clone()).oneshot(req).await.expect("answer");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            res.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/login?failed=csrf")
        );
        assert!(st.sessions.is_empty());
    }

    /// A fake logs service: app `g` has one APP and one RTR line and the platform source
    /// `cell/abc` one CELL line, for the token `old-access`; anything else is a 404, as
    /// log-cache answers. `/api/v1/meta` lists `g` (as a guid) and some platform sources.
    async fn fake_logs() -> String {
        const G: &str = "6f1c2c3e-8d34-4a9e-9a5e-1c0b2d3e4f50";
        let app = Router::new()
            .route(
                "/api/v1/stream/{id}",
                get(|axum::extract::Path(id): axum::extract::Path<String>, h: HeaderMap| async move {
                    let token = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let out = wire::envelope::LogStream::Out;
                    let envs = match id.as_str() {
                        _ if token != "Bearer old-access" => Vec::new(),
                        "g" => vec![
                            wire::envelope::Envelope::log("g", "0", "APP/PROC/WEB", "<i>hi</i>", out),
                            wire::envelope::Envelope::log("g", "0", "RTR", "GET /x", out),
                        ],
                        "cell/abc" => vec![wire::envelope::Envelope::log(
                            "cell/abc",
                            "abc",
                            "CELL",
                            "INFO cell: <b>placed</b>",
                            out,
                        )],
                        _ => Vec::new(),
                    };
                    if envs.is_empty() {
                        return (StatusCode::NOT_FOUND, String::new()).into_response();
                    }
                    let body: String = envs
                        .iter()
                        .map(|e| format!("data: {}\n\n", serde_json::json!({ "batch": [e] })))
                        .collect();
                    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
                }),
            )
            .route(
                "/api/v1/meta",
                get(|h: HeaderMap| async move {
                    let token = h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if token != "Bearer old-access" {
                        return Json(serde_json::json!({ "meta": {} }));
                    }
                    let n = serde_json::json!({ "count": "1" });
                    Json(serde_json::json!({ "meta": {
                        G: n, "router/0": n, "cell/abc": n, "api": n,
                    }}))
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn the_log_stream_is_the_users_and_filtered_by_source() {
        let logs = fake_logs().await;
        let st =
            AppState::new(crate::Config { logs_url: logs, ..Default::default() }).expect("state");
        let id = st.sessions.create(session(600));
        let (status, headers, body) =
            call(&st, "GET", "/logs/g/stream?sources=RTR", Some(&id), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        assert!(body.contains("GET /x") && body.contains("\"source_type\":\"RTR\""), "{body}");
        assert!(!body.contains("<i>hi</i>"), "APP lines filtered out: {body}");
        assert!(body.starts_with("id: "), "lines carry their time as the event id: {body}");
        let (_, _, all) = call(&st, "GET", "/logs/g/stream", Some(&id), None).await;
        assert!(all.contains("<i>hi</i>") && all.contains("GET /x"), "{all}");
        let (status, _, _) = call(&st, "GET", "/logs/other/stream", Some(&id), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "what the logs service refuses");
        let (status, _, _) = call(&st, "GET", "/logs/g/stream", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn operators_pages_are_for_admins_only() {
        let st = state("http://127.0.0.1:9");
        let id = st.sessions.create(session(600));
        for p in [
            "/admin/cells",
            "/admin/routes",
            "/admin/health",
            "/admin/logs/sources",
            "/admin/logs/stream?source=api",
        ] {
            let (status, _, body) = call(&st, "GET", p, Some(&id), None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
            assert!(body.contains("for platform operators only"), "{p}: {body}");
            assert_eq!(call(&st, "GET", p, None, None).await.0, StatusCode::UNAUTHORIZED, "{p}");
        }
    }

    #[tokio::test]
    async fn operators_follow_the_platforms_own_sources() {
        let logs = fake_logs().await;
        let st =
            AppState::new(crate::Config { logs_url: logs, ..Default::default() }).expect("state");
        let id = st.sessions.create(Session { admin: true, ..session(600) });
        let (status, _, body) = call(&st, "GET", "/admin/logs/sources", Some(&id), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            v,
            serde_json::json!({ "sources": ["api", "cell/abc", "router/0"] }),
            "no app guids, sorted"
        );
        // A source with a slash reaches the logs service as one path segment.
        let (status, headers, body) =
            call(&st, "GET", "/admin/logs/stream?source=cell%2Fabc", Some(&id), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        assert!(body.starts_with("id: "), "{body}");
        assert!(body.contains("INFO cell: <b>placed</b>"), "{body}");
        assert!(body.contains("\"source_type\":\"CELL\"") && body.contains("\"instance\":\"abc\""));
        let (_, _, same) =
            call(&st, "GET", "/admin/logs/stream?source=cell/abc", Some(&id), None).await;
        assert!(same.contains("<b>placed</b>"), "{same}");
        let (status, _, _) =
            call(&st, "GET", "/admin/logs/stream?source=router/9", Some(&id), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "what the logs service refuses");
        for bad in ["", "?source=", "?source=..%2Fapi", "?source=api%3Fx%3D1", "?source=a%20b"] {
            let (status, _, body) =
                call(&st, "GET", &format!("/admin/logs/stream{bad}"), Some(&id), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("json error");
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{bad}: {body}");
        }
        // The logs service unreachable: a gateway error, in the same shape.
        let st = AppState::new(crate::Config {
            logs_url: "http://127.0.0.1:9".into(),
            ..Default::default()
        })
        .expect("state");
        let id = st.sessions.create(Session { admin: true, ..session(600) });
        let (status, _, body) = call(&st, "GET", "/admin/logs/sources", Some(&id), None).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(body.contains("\"error\""), "{body}");
    }
}
