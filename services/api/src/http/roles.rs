//! Roles and users : org roles assigned by org managers, space roles
//! by org or space managers to users who already hold a role in the org; `/v3/users` over the
//! users the token issuer knows.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::role::{RoleRelationships, User};
use wire::v3::{self, Included, Link, Metadata, Page, ToOne};

use crate::access::{Caller, ORG_ROLES, SPACE_ROLES};
use crate::domain::events::{self, Actor, Target};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{created, links, ts};
use crate::store::roles::Role;
use crate::store::users::UserRef;
use crate::store::Select;
use crate::store::{self, new_guid, now_ms};
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

fn present(s: &AppState, r: &Role) -> v3::Role {
    let is_space = !r.space_guid.is_empty();
    let mut links = links([
        ("self", Link::new(format!("{}/roles/{}", s.v3(), r.guid))),
        ("user", Link::new(format!("{}/users/{}", s.v3(), r.user_guid))),
    ]);
    if is_space {
        links.insert("space".into(), Link::new(format!("{}/spaces/{}", s.v3(), r.space_guid)));
    } else {
        let org = Link::new(format!("{}/organizations/{}", s.v3(), r.org_guid));
        links.insert("organization".into(), org);
    }
    v3::Role {
        guid: r.guid.clone(),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
        kind: r.kind.clone(),
        relationships: RoleRelationships {
            user: ToOne::of(&r.user_guid),
            organization: ToOne::of(if is_space { "" } else { &r.org_guid }),
            space: ToOne::of(&r.space_guid),
        },
        links,
    }
}

/// The user named by a role request: `{guid}` or `{username, origin}`.
async fn resolve_user(s: &AppState, data: &Value) -> ApiResult<(String, String)> {
    let user = if let Some(g) = data.get("guid").and_then(Value::as_str) {
        store::users::find_ref(&s.db, g).await?
    } else if let Some(n) = data.get("username").and_then(Value::as_str) {
        let origin = data.get("origin").and_then(Value::as_str).unwrap_or("uaa");
        store::users::find_ref_by_name(&s.db, n, origin).await?
    } else {
        return Err(ApiError::Unprocessable(
            "Relationships 'user' must include a guid or a username".into(),
        ));
    };
    let u = user.ok_or_else(|| {
        ApiError::Unprocessable(
            "Invalid user. Ensure that the user exists and you have access to it.".into(),
        )
    })?;
    Ok((u.guid, u.username))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let kind = req.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let rel = req.get("relationships").cloned().unwrap_or(Value::Null);
    let user_data = rel.pointer("/user/data").cloned().unwrap_or(Value::Null);
    if user_data.get("username").is_some() {
        flags::require(&s, &c, Flag::SetRolesByUsername).await?;
    }
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
        if !store::roles::in_org(&s.db.pool, &user_guid, &space.org_guid).await? {
            return Err(ApiError::Unprocessable("Users cannot be assigned roles in a space if they do not have a role in that space's organization.".into()));
        }
        (space.org_guid, space.guid, space.name, "space")
    } else {
        return Err(ApiError::Unprocessable(format!(
            "Type must be one of the allowed types {:?}",
            ORG_ROLES.iter().chain(SPACE_ROLES.iter()).collect::<Vec<_>>()
        )));
    };
    let now = now_ms();
    let role = Role {
        guid: new_guid(),
        kind: kind.clone(),
        user_guid: user_guid.clone(),
        org_guid: org.clone(),
        space_guid: space.clone(),
        created_at: now,
        updated_at: now,
    };
    store::roles::insert(&s.db.pool, &role, || {
        ApiError::Unprocessable(format!(
            "User '{username}' already has '{kind}' role in {target_kind} '{target_name}'."
        ))
    })
    .await?;
    let short = kind.trim_start_matches("organization_").trim_start_matches("space_");
    let t = Target { guid: &user_guid, kind: "user", name: &username, space: &space, org: &org };
    let ev = format!("audit.user.{target_kind}_{short}_add");
    events::record(&s, &ev, &Actor::of(&c), &t, json!({"role": kind})).await;
    Ok(created(present(&s, &role)))
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
) -> ApiResult<Json<Page<v3::Role>>> {
    const FILTERS: [&str; 6] =
        ["guids", "types", "space_guids", "organization_guids", "user_guids", "include"];
    let mut list = List::parse(&s, q.as_deref(), "roles", "roles", &FILTERS, &[])?
        .filter("guids", "guid")
        .filter("types", "type")
        .filter("space_guids", "space_guid")
        .filter("organization_guids", "org_guid")
        .filter("user_guids", "user_guid");
    visible(&c, list.select()).await?;
    let roles = list.fetch(async |sel, w| store::roles::page(&s.db, sel, w).await).await?;
    let roles = roles.include(async |roles, inc| include_users(&s, roles, inc).await).await?;
    Ok(Json(roles.present(|r| present(&s, r))))
}

/// `include=user`: the roles' users.
async fn include_users(
    s: &AppState,
    roles: &[Role],
    inc: &[String],
) -> ApiResult<Option<Included>> {
    if !inc.iter().any(|x| x == "user") {
        return Ok(None);
    }
    let mut users = Vec::new();
    for r in roles {
        if let Some(u) = store::users::find_ref(&s.db, &r.user_guid).await? {
            users.push(present_user(s, &u));
        }
    }
    Ok(Some(Included { users: Some(users), ..Included::default() }))
}

async fn find_visible(s: &AppState, c: &Caller, guid: &str) -> ApiResult<Role> {
    let mut sel = Select::from("roles");
    sel.eq("guid", guid);
    visible(c, &mut sel).await?;
    store::roles::all(&s.db, &sel).await?.into_iter().next().ok_or(ApiError::NotFound("Role"))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Role>> {
    Ok(Json(present(&s, &find_visible(&s, &c, &guid).await?)))
}

async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let role = find_visible(&s, &c, &guid).await?;
    let allowed = if role.space_guid.is_empty() {
        c.org_manager(&role.org_guid).await?
    } else {
        c.require_space(&role.space_guid, &role.org_guid, "Role", crate::access::Need::SpaceManager)
            .await
            .is_ok()
    };
    if !allowed {
        return Err(ApiError::NotAuthorized);
    }
    let work = async {
        let mut tx = store::begin(&s.db).await?;
        store::roles::delete(&mut tx, &role).await?;
        Ok(tx.commit().await?)
    };
    let job = crate::domain::jobs::run(&s, "role.delete", "", "", work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

fn present_user(s: &AppState, u: &UserRef) -> User {
    User {
        guid: u.guid.clone(),
        created_at: ts(u.created_at),
        updated_at: ts(u.updated_at),
        username: Some(u.username.clone()),
        presentation_name: u.username.clone(),
        origin: Some(u.origin.clone()),
        metadata: Metadata::default(),
        links: links([("self", Link::new(format!("{}/users/{}", s.v3(), u.guid)))]),
    }
}

/// Users the caller can see: everyone for global readers and org managers' orgs, else the
/// users sharing an org with the caller, and the caller.
async fn users_page(
    s: &AppState,
    c: &Caller,
    list: List,
    within: Option<(&str, &str)>,
) -> ApiResult<Json<Page<User>>> {
    let mut list =
        list.filter("guids", "guid").filter("usernames", "username").filter("origins", "origin");
    if let Some((col, guid)) = within {
        let ids = store::roles::users_within(&s.db.pool, col == "space_guid", guid).await?;
        list = list.any("guid", &ids);
    } else if let Some(orgs) = c.visible_orgs().await? {
        let mut ids = vec![c.guid().to_owned()];
        for org in orgs {
            ids.extend(store::roles::users_within(&s.db.pool, false, &org).await?);
        }
        list = list.any("guid", &ids);
    }
    let users = list.fetch(async |sel, w| store::users::page(&s.db, sel, w).await).await?;
    Ok(Json(users.present(|u| present_user(s, u))))
}

const USER_FILTERS: [&str; 5] =
    ["guids", "usernames", "partial_usernames", "origins", "label_selector"];

fn parse_users(s: &AppState, q: Option<&str>, path: &str, orders: &[&str]) -> ApiResult<List> {
    List::parse(s, q, path, "users", &USER_FILTERS, orders)
}

async fn list_users(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<User>>> {
    users_page(&s, &c, parse_users(&s, q.as_deref(), "users", &["username"])?, None).await
}

async fn org_users(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<User>>> {
    let org = crate::http::orgs::readable(&s, &c, &guid).await?;
    let list =
        parse_users(&s, q.as_deref(), &format!("organizations/{guid}/users"), &["username"])?;
    users_page(&s, &c, list, Some(("org_guid", &org.guid))).await
}

async fn space_users(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<User>>> {
    let space = crate::http::spaces::require(&s, &c, &guid, crate::access::Need::Read).await?;
    let list = parse_users(&s, q.as_deref(), &format!("spaces/{guid}/users"), &["username"])?;
    users_page(&s, &c, list, Some(("space_guid", &space.guid))).await
}

async fn show_user(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<User>> {
    let list = parse_users(&s, Some(&format!("guids={guid}")), &format!("users/{guid}"), &[])?;
    let Json(page) = users_page(&s, &c, list, None).await?;
    let first = page.resources.into_iter().next().ok_or(ApiError::NotFound("User"))?;
    Ok(Json(first))
}

/// `POST /v3/users`: the users table is shared with the token issuer, so a user created in
/// `/Users` already exists here; this answers with it (201) so CF clients work unchanged.
async fn create_user(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let (guid, _) = resolve_user(&s, &req).await?;
    let user = store::users::find_ref(&s.db, &guid).await?.ok_or(ApiError::NotFound("User"))?;
    Ok(created(present_user(&s, &user)))
}
