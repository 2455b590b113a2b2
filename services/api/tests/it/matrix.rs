//! The role matrix, table-driven: every role × every action of the
//! tenancy API, against the caller's own org and against another tenant's, on both engines.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

const ROLES: [&str; 9] = [
    "admin",
    "organization_manager",
    "organization_auditor",
    "organization_user",
    "organization_billing_manager",
    "space_manager",
    "space_developer",
    "space_auditor",
    "space_supporter",
];

/// One tenant's resources.
#[derive(Clone)]
struct Tenant {
    org: String,
    space: String,
    app: String,
}

async fn tenant(admin: &Client, name: &str) -> Tenant {
    let (org, space) = crate::push::org_and_space(admin, name).await;
    let (_, app) = admin
        .post(
            "/v3/apps",
            json!({"name": "app", "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    Tenant { org, space, app: app["guid"].as_str().expect("app").to_owned() }
}

async fn user(admin: &Client, name: &str) {
    let res = admin
        .http
        .post(format!("{}/Users", admin.url))
        .bearer_auth(&admin.token)
        .json(&json!({"userName": name, "password": "pw-for-matrix"}))
        .send()
        .await
        .expect("scim");
    assert_eq!(res.status(), 201, "{name}");
}

async fn grant(admin: &Client, name: &str, kind: &str, t: &Tenant) {
    let rel = |k: &str, g: &str| json!({"type": k, "relationships": {"user": {"data": {"username": name}}, (if k.starts_with("space") { "space" } else { "organization" }): {"data": {"guid": g}}}});
    if kind.starts_with("space") {
        let (st, e) = admin.post("/v3/roles", rel("organization_user", &t.org)).await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
        let (st, e) = admin.post("/v3/roles", rel(kind, &t.space)).await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
    } else {
        let (st, e) = admin.post("/v3/roles", rel(kind, &t.org)).await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
    }
}

/// An action against a tenant's resources; `n` makes names unique per call.
async fn act(action: &str, c: &Client, t: &Tenant, n: usize) -> StatusCode {
    let body_space = |name: String| json!({"name": name, "relationships": {"organization": {"data": {"guid": t.org}}}});
    let (st, _): (StatusCode, Value) = match action {
        "get org" => c.get(&format!("/v3/organizations/{}", t.org)).await,
        "rename org" => c.patch(&format!("/v3/organizations/{}", t.org), json!({"metadata": {"labels": {"n": n.to_string()}}})).await,
        "create space" => c.post("/v3/spaces", body_space(format!("s{n}"))).await,
        "get space" => c.get(&format!("/v3/spaces/{}", t.space)).await,
        "rename space" => c.patch(&format!("/v3/spaces/{}", t.space), json!({"metadata": {"labels": {"n": n.to_string()}}})).await,
        "get app" => c.get(&format!("/v3/apps/{}", t.app)).await,
        "create app" => c.post("/v3/apps", json!({"name": format!("a{n}"), "relationships": {"space": {"data": {"guid": t.space}}}})).await,
        "scale app" => c.post(&format!("/v3/apps/{}/processes/web/actions/scale", t.app), json!({"instances": 1})).await,
        "read env" => c.get(&format!("/v3/apps/{}/env", t.app)).await,
        "grant org role" => {
            c.post("/v3/roles", json!({"type": "organization_auditor", "relationships": {"user": {"data": {"username": format!("target{n}")}}, "organization": {"data": {"guid": t.org}}}})).await
        }
        "grant space role" => {
            c.post("/v3/roles", json!({"type": "space_auditor", "relationships": {"user": {"data": {"username": format!("target{n}")}}, "space": {"data": {"guid": t.space}}}})).await
        }
        other => panic!("unknown action {other}"),
    };
    st
}

/// Expected status on the caller's own tenant, by action, in `ROLES` order.
fn own_table() -> Vec<(&'static str, [u16; 9])> {
    //                          admin  om   oa   ou   ob   sm   sd   sa   ss
    vec![
        ("get org", [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("rename org", [200, 200, 403, 403, 403, 403, 403, 403, 403]),
        ("create space", [201, 201, 403, 403, 403, 403, 403, 403, 403]),
        ("get space", [200, 200, 404, 404, 404, 200, 200, 200, 200]),
        ("rename space", [200, 200, 404, 404, 404, 200, 403, 403, 403]),
        ("get app", [200, 200, 404, 404, 404, 200, 200, 200, 200]),
        ("create app", [201, 403, 422, 422, 422, 403, 201, 403, 403]),
        ("scale app", [202, 403, 404, 404, 404, 403, 202, 403, 202]),
        ("read env", [200, 403, 404, 404, 404, 403, 200, 403, 403]),
        ("grant org role", [201, 201, 403, 403, 403, 403, 403, 403, 403]),
        ("grant space role", [201, 201, 422, 422, 422, 201, 403, 403, 403]),
    ]
}

/// Against another tenant, everything is unknown: 404, or 422 where the other tenant's guid
/// is a relationship in the request body.
fn other_tenant(action: &str) -> u16 {
    match action {
        "create space" | "create app" | "grant org role" | "grant space role" => 422,
        _ => 404,
    }
}

#[tokio::test]
async fn every_role_and_action_on_own_and_other_tenants() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let mine = tenant(&admin, "mine").await;
        let theirs = tenant(&admin, "theirs").await;
        let mut clients = Vec::new();
        for (i, role) in ROLES.iter().enumerate() {
            if *role == "admin" {
                clients.push(admin.clone());
                continue;
            }
            let name = format!("u{i}");
            user(&admin, &name).await;
            grant(&admin, &name, role, &mine).await;
            clients.push(Client::new(
                &p.url,
                &harness::password_token(&p.url, &name, "pw-for-matrix").await,
            ));
        }
        let mut n = 0;
        let mut failures = Vec::new();
        for (action, expected) in own_table() {
            for (i, role) in ROLES.iter().enumerate() {
                n += 1;
                // Targets of role grants: users of both orgs.
                if action.starts_with("grant") {
                    user(&admin, &format!("target{n}")).await;
                    for t in [&mine, &theirs] {
                        let body = json!({"type": "organization_user", "relationships": {"user": {"data": {"username": format!("target{n}")}}, "organization": {"data": {"guid": t.org}}}});
                        admin.post("/v3/roles", body).await;
                    }
                }
                let got = act(action, &clients[i], &mine, n).await.as_u16();
                if got != expected[i] {
                    failures
                        .push(format!("{role} / {action} / own: got {got}, want {}", expected[i]));
                }
                if *role != "admin" {
                    n += 1;
                    if action.starts_with("grant") {
                        user(&admin, &format!("target{n}")).await;
                    }
                    let got = act(action, &clients[i], &theirs, n).await.as_u16();
                    if got != other_tenant(action) {
                        failures.push(format!(
                            "{role} / {action} / other: got {got}, want {}",
                            other_tenant(action)
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{engine:?}:\n{}", failures.join("\n"));
        p.stop().await;
    }
}
