//! Labels and annotations on resources, and `label_selector` on lists, on both engines.

use axum::http::StatusCode;
use serde_json::json;
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

#[tokio::test]
async fn labels_are_stored_shown_and_selected() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let c = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&c, "labels").await;
        let mk = |name: &str, labels: serde_json::Value| json!({"name": name, "relationships": {"space": {"data": {"guid": space}}}, "metadata": {"labels": labels, "annotations": {"contact": "ops@example.com"}}});
        let (st, a) = c.post("/v3/apps", mk("a", json!({"env": "prod", "tier": "web"}))).await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        assert_eq!(a["metadata"]["labels"]["env"], "prod");
        assert_eq!(a["metadata"]["annotations"]["contact"], "ops@example.com");
        c.post("/v3/apps", mk("b", json!({"env": "dev", "tier": "api"}))).await;
        c.post("/v3/apps", mk("c", json!({"tier": "web"}))).await;
        let names = |v: &serde_json::Value| -> Vec<String> {
            v["resources"]
                .as_array()
                .expect("list")
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect()
        };
        for (sel, want) in [
            ("env=prod", vec!["a"]),
            ("env", vec!["a", "b"]),
            ("!env", vec!["c"]),
            ("env!=prod", vec!["b", "c"]),
            ("tier in (web,api),env", vec!["a", "b"]),
            ("tier notin (web)", vec!["b"]),
        ] {
            let (st, v) = c.get(&format!("/v3/apps?label_selector={}", urlencode(sel))).await;
            assert_eq!(st, StatusCode::OK, "{sel}: {v}");
            assert_eq!(names(&v), want, "{sel}");
        }
        let a = a["guid"].as_str().expect("guid");
        let (st, v) = c
            .patch(
                &format!("/v3/apps/{a}"),
                json!({"metadata": {"labels": {"env": null, "new": "yes"}}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["metadata"]["labels"], json!({"tier": "web", "new": "yes"}));
        let (st, e) = c
            .patch(
                &format!("/v3/apps/{a}"),
                json!({"name": "renamed", "metadata": {"labels": {"bad key!": "x"}}}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(
            c.get(&format!("/v3/apps/{a}")).await.1["name"],
            "a",
            "a refused label changes nothing"
        );
        let (st, o) = c
            .patch(
                &format!("/v3/organizations/{org}"),
                json!({"metadata": {"labels": {"cost-center": "42"}}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{o}");
        let (_, orgs) = c.get("/v3/organizations?label_selector=cost-center%3D42").await;
        assert_eq!(names(&orgs), ["labels"]);
        let (st, _) = c.get("/v3/apps?label_selector=tier%20in%20web").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        p.stop().await;
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `PATCH` with only `metadata` on the resources whose other fields are not changed that way
/// (routes, domains, stacks, packages, builds, droplets): stored and shown, with CC's refusals.
#[tokio::test]
async fn every_resource_takes_labels_by_patch() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "patches").await;
        crate::tenancy::create_user(&admin, "aud").await;
        let role = crate::tenancy::role;
        assert_eq!(role(&admin, "organization_user", "aud", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_auditor", "aud", ("space", &space)).await.0, 201);
        let auditor = crate::tenancy::login(&p.url, "aud").await;
        let (_, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let (_, droplet) = crate::push::push_bits(&admin, &app, &[("app.py", b"print(1)")]).await;
        let (_, builds) = admin.get(&format!("/v3/apps/{app}/builds")).await;
        let build = builds["resources"][0]["guid"].as_str().expect("build").to_owned();
        let package =
            builds["resources"][0]["package"]["guid"].as_str().expect("package").to_owned();
        let (_, domains) = admin.get("/v3/domains").await;
        let domain = domains["resources"][0]["guid"].as_str().expect("domain").to_owned();
        let (st, route) = admin
            .post("/v3/routes", json!({"host": "web", "relationships": {"space": {"data": {"guid": space}}, "domain": {"data": {"guid": domain}}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{route}");
        let route = route["guid"].as_str().expect("route").to_owned();

        let patch = json!({"metadata": {"labels": {"team": "blue"}, "annotations": {"note": "x"}}});
        for path in [
            format!("/v3/routes/{route}"),
            format!("/v3/domains/{domain}"),
            "/v3/stacks/bookworm".to_owned(),
            format!("/v3/packages/{package}"),
            format!("/v3/builds/{build}"),
            format!("/v3/droplets/{droplet}"),
        ] {
            let (st, r) = admin.patch(&path, patch.clone()).await;
            assert_eq!(st, StatusCode::OK, "{path}: {r}");
            assert_eq!(r["metadata"]["labels"]["team"], "blue", "{path}: {r}");
            let (_, again) = admin.get(&path).await;
            assert_eq!(again["metadata"]["annotations"]["note"], "x", "{path} keeps it: {again}");
            let (st, e) = admin.patch(&path, json!({"name": "renamed"})).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {e}");
            assert_eq!(e["errors"][0]["detail"], "Unknown field(s): 'name'", "{path}");
            let (st, e) =
                admin.patch(&path, json!({"metadata": {"labels": {"bad key!": "v"}}})).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {e}");
            let (st, e) = auditor.patch(&path, patch.clone()).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "an auditor changes nothing on {path}: {e}");
        }
        let (_, selected) = admin.get("/v3/routes?label_selector=team%3Dblue").await;
        assert_eq!(selected["pagination"]["total_results"], 1, "{selected}");
        p.stop().await;
    }
}
