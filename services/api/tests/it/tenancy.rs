//! Many teams on one api, on both engines: users see only their orgs and spaces, another
//! tenant's resources answer 404, roles decide who may write.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

/// `cf create-user`: SCIM user, then the v3 user record; returns the user's guid.
pub async fn create_user(admin: &Client, name: &str) -> String {
    let res = admin
        .http
        .post(format!("{}/Users", admin.url))
        .bearer_auth(&admin.token)
        .json(&json!({"userName": name, "password": format!("{name}-pw"), "emails": [{"value": format!("{name}@example.com")}]}))
        .send()
        .await
        .expect("scim");
    assert_eq!(res.status(), 201);
    let guid = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let (st, u) = admin.post("/v3/users", json!({"guid": guid})).await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    guid
}

/// A client signed in as a user made by [`create_user`].
pub async fn login(url: &str, name: &str) -> Client {
    Client::new(url, &harness::password_token(url, name, &format!("{name}-pw")).await)
}

pub async fn role(
    admin: &Client,
    kind: &str,
    user: &str,
    rel: (&str, &str),
) -> (StatusCode, Value) {
    admin
        .post("/v3/roles", json!({"type": kind, "relationships": {"user": {"data": {"username": user, "origin": "uaa"}}, rel.0: {"data": {"guid": rel.1}}}}))
        .await
}

#[tokio::test]
async fn tenants_see_only_their_own_and_roles_decide_writes() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org_a, space_a) = crate::push::org_and_space(&admin, "team-a").await;
        let (org_b, space_b) = crate::push::org_and_space(&admin, "team-b").await;
        let (_, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "a-app", "relationships": {"space": {"data": {"guid": space_a}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        create_user(&admin, "alice").await;
        create_user(&admin, "bob").await;
        create_user(&admin, "carol").await;

        let (st, e) = role(&admin, "space_developer", "alice", ("space", &space_a)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e["errors"][0]["detail"]
            .as_str()
            .expect("detail")
            .contains("do not have a role in that space's organization"));
        assert_eq!(
            role(&admin, "organization_user", "alice", ("organization", &org_a)).await.0,
            StatusCode::CREATED
        );
        assert_eq!(
            role(&admin, "space_developer", "alice", ("space", &space_a)).await.0,
            StatusCode::CREATED
        );
        let (st, e) = role(&admin, "space_developer", "alice", ("space", &space_a)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e["errors"][0]["detail"],
            "User 'alice' already has 'space_developer' role in space 'dev'."
        );
        assert_eq!(
            role(&admin, "organization_user", "bob", ("organization", &org_b)).await.0,
            StatusCode::CREATED
        );
        assert_eq!(
            role(&admin, "space_developer", "bob", ("space", &space_b)).await.0,
            StatusCode::CREATED
        );
        assert_eq!(
            role(&admin, "organization_user", "carol", ("organization", &org_a)).await.0,
            StatusCode::CREATED
        );
        assert_eq!(
            role(&admin, "space_auditor", "carol", ("space", &space_a)).await.0,
            StatusCode::CREATED
        );

        let alice =
            Client::new(&p.url, &harness::password_token(&p.url, "alice", "alice-pw").await);
        let bob = Client::new(&p.url, &harness::password_token(&p.url, "bob", "bob-pw").await);
        let carol =
            Client::new(&p.url, &harness::password_token(&p.url, "carol", "carol-pw").await);

        // Listing: each sees their own.
        let names = |v: &Value| -> Vec<String> {
            v["resources"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(names(&alice.get("/v3/organizations?order_by=name").await.1), ["team-a"]);
        assert_eq!(names(&bob.get("/v3/organizations").await.1), ["team-b"]);
        assert_eq!(
            names(&alice.get(&format!("/v3/spaces?organization_guids={org_a}")).await.1),
            ["dev"]
        );
        assert_eq!(names(&bob.get("/v3/apps").await.1), Vec::<String>::new());
        assert_eq!(names(&alice.get("/v3/apps").await.1), ["a-app"]);

        // Another tenant's ids: 404, never 403.
        for path in [
            format!("/v3/apps/{app}"),
            format!("/v3/spaces/{space_a}"),
            format!("/v3/organizations/{org_a}"),
            format!("/v3/processes/{app}/stats"),
        ] {
            let (st, e) = bob.get(&path).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {e}");
        }
        let (st, _) = bob.post(&format!("/v3/apps/{app}/actions/stop"), json!({})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = bob.patch(&format!("/v3/apps/{app}"), json!({"name": "stolen"})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = bob
            .post(
                "/v3/packages",
                json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let (st, _) = bob.get(&format!("/internal/v4/log_access/{app}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "no logs of another tenant");
        let (st, _, _) = bob
            .post_yaml(
                &format!("/v3/spaces/{space_a}/actions/apply_manifest"),
                "applications:\n- name: x\n",
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Readers read, writers write.
        assert_eq!(carol.get(&format!("/v3/apps/{app}")).await.0, StatusCode::OK);
        assert_eq!(carol.get(&format!("/internal/v4/log_access/{app}")).await.0, StatusCode::OK);
        let (st, e) = carol.patch(&format!("/v3/apps/{app}"), json!({"name": "renamed"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-NotAuthorized");
        assert_eq!(
            carol.get(&format!("/v3/apps/{app}/env")).await.0,
            StatusCode::FORBIDDEN,
            "auditors see no secrets"
        );
        let (st, _) = alice.patch(&format!("/v3/apps/{app}"), json!({"name": "renamed"})).await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = alice.post("/v3/organizations", json!({"name": "alice-org"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "only admins create orgs");
        let (st, _) = alice
            .post(
                "/v3/spaces",
                json!({"name": "x", "relationships": {"organization": {"data": {"guid": org_a}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "org users do not create spaces");
        let (st, _) = role(&alice, "space_manager", "alice", ("space", &space_a)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "developers do not grant roles");

        // Quotas bound what an org may run.
        let (st, q) = admin.post("/v3/organization_quotas", json!({"name": "tiny", "apps": {"total_memory_in_mb": 512}, "relationships": {"organizations": {"data": [{"guid": org_a}]}}})).await;
        assert_eq!(st, StatusCode::CREATED, "{q}");
        let (st, e) = alice
            .post(
                &format!("/v3/apps/{app}/processes/web/actions/scale"),
                json!({"instances": 1, "memory_in_mb": 1024}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "a stopped app does not count against the quota: {e}");
        let droplet_less = alice.post(&format!("/v3/apps/{app}/actions/start"), json!({})).await;
        assert_eq!(droplet_less.0, StatusCode::UNPROCESSABLE_ENTITY);
        let (st, sq) = admin
            .post("/v3/space_quotas", json!({"name": "one-app", "apps": {"total_apps": 1}, "relationships": {"organization": {"data": {"guid": org_a}}, "spaces": {"data": [{"guid": space_a}]}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{sq}");
        assert_eq!(sq["relationships"]["spaces"]["data"][0]["guid"], space_a.as_str());
        let (st, e) = alice
            .post(
                "/v3/apps",
                json!({"name": "second", "relationships": {"space": {"data": {"guid": space_a}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["errors"][0]["detail"], "Apps quota exceeded for space.");
        assert_eq!(
            bob.get(&format!("/v3/space_quotas/{}", sq["guid"].as_str().expect("guid"))).await.0,
            StatusCode::NOT_FOUND
        );
        let (_, events) = admin.get("/v3/audit_events?types=audit.user.space_developer_add").await;
        assert!(events["pagination"]["total_results"].as_i64().expect("n") >= 2);
        let (_, users) = admin.get(&format!("/v3/spaces/{space_a}/users")).await;
        let mut usernames: Vec<String> = users["resources"]
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|u| u["username"].as_str().map(str::to_owned))
            .collect();
        usernames.sort();
        assert_eq!(usernames, ["alice", "carol"]);
        p.stop().await;
    }
}
