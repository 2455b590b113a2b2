//! Roles and users (contracts/ccapi.md §4.12): org roles assigned by org managers, space roles
//! by org or space managers to users who already hold a role in the org; `/v3/users` over the
//! users the token issuer knows.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, ORG_ROLES, SPACE_ROLES};
use crate::error::{ApiError, ApiResult};
use crate::http::events::{self, Actor, Target};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{link, metadata, to_one, ts};
use crate::store::Select;
use crate::store::{new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/roles", get(list).post(create))
        .route("/v3/roles/{guid}", get(show).delete(delete))
        .route("/v3/users", get(list_users).post(create_user))
        .route("/v3/users/{guid}", get(show_user))
        .route("/v3/organizations/{guid}/users", get(org_users))
        .route("/v3/spaces/{guid}/users", get(space_users))
}

fn present(s: &AppState, r: &AnyRow) -> ApiResult<Value> {
    let guid: String = r.try_get("guid")?;
    let user: String = r.try_get("user_guid")?;
    let org: String = r.try_get("org_guid")?;
    let space: String = r.try_get("space_guid")?;
    let kind: String = r.try_get("type")?;
    let is_space = !space.is_empty();
    let mut links = json!({
        "self": link(format!("{}/roles/{guid}", s.v3())),
        "user": link(format!("{}/users/{user}", s.v3())),
    });
    if is_space {
        links["space"] = link(format!("{}/spaces/{space}", s.v3()));
    } else {
        links["organization"] = link(format!("{}/organizations/{org}", s.v3()));
    }
    Ok(json!({
        "guid": guid, "created_at": ts(r.try_get("created_at")?), "updated_at": ts(r.try_get("updated_at")?),
        "type": kind,
        "relationships": {
            "user": to_one(&user),
            "organization": to_one(if is_space { "" } else { &org }),
            "space": to_one(&space),
        },
        "links": links,
    }))
}

/// The user named by a role request: `{guid}` or `{username, origin}`.
async fn resolve_user(s: &AppState, data: &Value) -> ApiResult<(String, String)> {
    let row = if let Some(g) = data.get("guid").and_then(Value::as_str) {
        sqlx::query("SELECT guid, username FROM users WHERE guid = $1")
            .bind(g)
            .fetch_optional(&s.db.pool)
            .await?
    } else if let Some(n) = data.get("username").and_then(Value::as_str) {
        let origin = data.get("origin").and_then(Value::as_str).unwrap_or("uaa");
        sqlx::query("SELECT guid, username FROM users WHERE username = $1 AND origin = $2")
            .bind(n)
            .bind(origin)
            .fetch_optional(&s.db.pool)
            .await?
    } else {
        return Err(ApiError::Unprocessable(
            "Relationships 'user' must include a guid or a username".into(),
        ));
    };
    let r = row.ok_or_else(|| {
        ApiError::Unprocessable(
            "Invalid user. Ensure that the user exists and you have access to it.".into(),
        )
    })?;
    Ok((r.try_get("guid")?, r.try_get("username")?))
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    let kind = req.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let rel = req.get("relationships").cloned().unwrap_or(Value::Null);
    let user_data = rel.pointer("/user/data").cloned().unwrap_or(Value::Null);
    let (user_guid, username) = resolve_user(&s, &user_data).await?;
    let (org, space, target_name, target_kind) = if ORG_ROLES.contains(&kind.as_str()) {
        let g = rel.pointer("/organization/data/guid").and_then(Value::as_str).unwrap_or_default();
        let org = crate::http::orgs::readable(&s, &c, g).await.map_err(|_| {
            ApiError::Unprocessable("Invalid organization. Ensure that the organization exists and you have access to it.".into())
        })?;
        if !c.org_manager(&org.guid).await? {
            return Err(ApiError::NotAuthorized);
        }
        (org.guid, String::new(), org.name, "organization")
    } else if SPACE_ROLES.contains(&kind.as_str()) {
        let g = rel.pointer("/space/data/guid").and_then(Value::as_str).unwrap_or_default();
        let space = crate::http::spaces::require(&s, &c, g, crate::access::Need::SpaceManager)
            .await
            .map_err(|e| match e {
                ApiError::NotFound(_) => ApiError::Unprocessable(
                    "Invalid space. Ensure that the space exists and you have access to it.".into(),
                ),
                e => e,
            })?;
        let in_org = sqlx::query(
            "SELECT guid FROM roles WHERE user_guid = $1 AND org_guid = $2 AND space_guid = ''",
        )
        .bind(&user_guid)
        .bind(&space.org_guid)
        .fetch_optional(&s.db.pool)
        .await?;
        if in_org.is_none() {
            return Err(ApiError::Unprocessable("Users cannot be assigned roles in a space if they do not have a role in that space's organization.".into()));
        }
        (space.org_guid, space.guid, space.name, "space")
    } else {
        return Err(ApiError::Unprocessable(format!(
            "Type must be one of the allowed types {:?}",
            ORG_ROLES.iter().chain(SPACE_ROLES.iter()).collect::<Vec<_>>()
        )));
    };
    let guid = new_guid();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO roles (guid, type, user_guid, org_guid, space_guid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&guid)
    .bind(&kind)
    .bind(&user_guid)
    .bind(&org)
    .bind(&space)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if crate::store::is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "User '{username}' already has '{kind}' role in {target_kind} '{target_name}'."
            )))
        }
        r => r?,
    };
    let short = kind.trim_start_matches("organization_").trim_start_matches("space_");
    let t = Target { guid: &user_guid, kind: "user", name: &username, space: &space, org: &org };
    let ev = format!("audit.user.{target_kind}_{short}_add");
    events::record(&s, &ev, &Actor::of(&c), &t, json!({"role": kind})).await;
    let row = sqlx::query("SELECT * FROM roles WHERE guid = $1")
        .bind(&guid)
        .fetch_one(&s.db.pool)
        .await?;
    Ok((StatusCode::CREATED, Json(present(&s, &row)?)).into_response())
}

async fn visible(c: &Caller, sel: &mut Select) -> ApiResult<()> {
    if let Some(orgs) = c.visible_orgs().await? {
        sel.any("org_guid", &orgs);
    }
    Ok(())
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["guids", "types", "space_guids", "organization_guids", "user_guids", "include"],
        &[],
    )?;
    let mut sel = Select::from("roles");
    crate::http::metadata::select(&mut sel, &q, "roles.guid")?;
    sel.filter(q.filter("guids"), "guid")
        .filter(q.filter("types"), "type")
        .filter(q.filter("space_guids"), "space_guid")
        .filter(q.filter("organization_guids"), "org_guid")
        .filter(q.filter("user_guids"), "user_guid");
    visible(&c, &mut sel).await?;
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows.iter().map(|r| present(&s, r)).collect::<ApiResult<Vec<_>>>()?;
    let mut env = q.envelope(&format!("{}/roles", s.v3()), total, items);
    if q.filter("include").is_some_and(|i| i.iter().any(|x| x == "user")) {
        let mut users = Vec::new();
        for r in &rows {
            let g: String = r.try_get("user_guid")?;
            if let Some(u) = user_row(&s, &g).await? {
                users.push(present_user(&s, &u)?);
            }
        }
        env["included"] = json!({ "users": users });
    }
    Ok(Json(env))
}

async fn find_visible(s: &AppState, c: &Caller, guid: &str) -> ApiResult<AnyRow> {
    let mut sel = Select::from("roles");

    sel.eq("guid", guid);
    visible(c, &mut sel).await?;
    sel.all(&s.db).await?.into_iter().next().ok_or(ApiError::NotFound("Role"))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(present(&s, &find_visible(&s, &c, &guid).await?)?))
}

async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let row = find_visible(&s, &c, &guid).await?;
    let org: String = row.try_get("org_guid")?;
    let space: String = row.try_get("space_guid")?;
    let allowed = if space.is_empty() {
        c.org_manager(&org).await?
    } else {
        c.require_space(&space, &org, "Role", crate::access::Need::SpaceManager).await.is_ok()
    };
    if !allowed {
        return Err(ApiError::NotAuthorized);
    }
    let res: ApiResult<()> = async {
        if space.is_empty() {
            // Losing the org role also loses the roles in its spaces, as in CF.
            let user: String = row.try_get("user_guid")?;
            let others = sqlx::query("SELECT guid FROM roles WHERE user_guid = $1 AND org_guid = $2 AND space_guid = '' AND guid <> $3")
                .bind(&user).bind(&org).bind(&guid).fetch_all(&s.db.pool).await?;
            if others.is_empty() {
                sqlx::query("DELETE FROM roles WHERE user_guid = $1 AND org_guid = $2 AND space_guid <> ''")
                    .bind(&user).bind(&org).execute(&s.db.pool).await?;
            }
        }
        sqlx::query("DELETE FROM roles WHERE guid = $1").bind(&guid).execute(&s.db.pool).await?;
        Ok(())
    }
    .await;
    let job = crate::domain::jobs::run(&s, "role.delete", "", "", async { res }).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn user_row(s: &AppState, guid: &str) -> ApiResult<Option<AnyRow>> {
    Ok(sqlx::query(
        "SELECT guid, username, origin, created_at, updated_at FROM users WHERE guid = $1",
    )
    .bind(guid)
    .fetch_optional(&s.db.pool)
    .await?)
}

fn present_user(s: &AppState, r: &AnyRow) -> ApiResult<Value> {
    let guid: String = r.try_get("guid")?;
    let name: String = r.try_get("username")?;
    Ok(json!({
        "guid": guid, "created_at": ts(r.try_get("created_at")?), "updated_at": ts(r.try_get("updated_at")?),
        "username": name, "presentation_name": name, "origin": r.try_get::<String, _>("origin")?,
        "metadata": metadata(),
        "links": {"self": link(format!("{}/users/{guid}", s.v3()))},
    }))
}

/// Users the caller can see: everyone for global readers and org managers' orgs, else the
/// users sharing an org with the caller, and the caller.
async fn users_page(
    s: &AppState,
    c: &Caller,
    q: &ListQuery,
    within: Option<(&str, &str)>,
    base: String,
) -> ApiResult<Json<Value>> {
    let mut sel = Select::from("users");
    crate::http::metadata::select(&mut sel, q, "users.guid")?;
    sel.filter(q.filter("guids"), "guid")
        .filter(q.filter("usernames"), "username")
        .filter(q.filter("origins"), "origin");
    if let Some((col, guid)) = within {
        let rows = sqlx::query(&format!("SELECT DISTINCT user_guid FROM roles WHERE {col} = $1"))
            .bind(guid)
            .fetch_all(&s.db.pool)
            .await?;
        let ids =
            rows.iter().map(|r| r.try_get("user_guid")).collect::<Result<Vec<String>, _>>()?;
        sel.any("guid", &ids);
    } else if let Some(orgs) = c.visible_orgs().await? {
        let mut ids = vec![c.guid().to_owned()];
        for org in orgs {
            let rows = sqlx::query("SELECT DISTINCT user_guid FROM roles WHERE org_guid = $1")
                .bind(&org)
                .fetch_all(&s.db.pool)
                .await?;
            for r in rows {
                ids.push(r.try_get("user_guid")?);
            }
        }
        sel.any("guid", &ids);
    }
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows.iter().map(|r| present_user(s, r)).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&base, total, items)))
}

const USER_FILTERS: [&str; 5] =
    ["guids", "usernames", "partial_usernames", "origins", "label_selector"];

async fn list_users(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(q.as_deref(), &USER_FILTERS, &["username"])?;
    users_page(&s, &c, &q, None, format!("{}/users", s.v3())).await
}

async fn org_users(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let org = crate::http::orgs::readable(&s, &c, &guid).await?;
    let q = ListQuery::parse(q.as_deref(), &USER_FILTERS, &["username"])?;
    users_page(
        &s,
        &c,
        &q,
        Some(("org_guid", &org.guid)),
        format!("{}/organizations/{guid}/users", s.v3()),
    )
    .await
}

async fn space_users(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let space = crate::http::spaces::require(&s, &c, &guid, crate::access::Need::Read).await?;
    let q = ListQuery::parse(q.as_deref(), &USER_FILTERS, &["username"])?;
    users_page(
        &s,
        &c,
        &q,
        Some(("space_guid", &space.guid)),
        format!("{}/spaces/{guid}/users", s.v3()),
    )
    .await
}

async fn show_user(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(Some(&format!("guids={guid}")), &USER_FILTERS, &[])?;
    let Json(page) = users_page(&s, &c, &q, None, String::new()).await?;
    let first = page["resources"].get(0).cloned().ok_or(ApiError::NotFound("User"))?;
    Ok(Json(first))
}

/// `POST /v3/users`: the users table is shared with the token issuer, so a user created in
/// `/Users` already exists here; this answers with it (201) so CF clients work unchanged.
async fn create_user(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let req: Value = body(&raw)?;
    let (guid, _) = resolve_user(&s, &req).await?;
    let row = user_row(&s, &guid).await?.ok_or(ApiError::NotFound("User"))?;
    Ok((StatusCode::CREATED, Json(present_user(&s, &row)?)).into_response())
}
