//! Private domains shared with other orgs (`cf share-private-domain`): who may share and
//! unshare, what the other org's users then see and may route, and CC's refusals.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, login, role};

fn guid(v: &Value) -> String {
    v["guid"].as_str().unwrap_or_else(|| panic!("no guid in {v}")).to_owned()
}

fn shared(v: &Value) -> Vec<String> {
    v["data"].as_array().expect("data").iter().map(guid).collect()
}

#[tokio::test]
async fn private_domains_are_shared_with_other_orgs_and_taken_back() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (acme, _) = crate::push::org_and_space(&admin, "acme").await;
        let (rival, rival_space) = crate::push::org_and_space(&admin, "rival").await;
        let (other, _) = crate::push::org_and_space(&admin, "other").await;
        // Mia manages acme and rival; Rob manages rival only; Dev develops in rival's space.
        for u in ["mia", "rob", "dev"] {
            create_user(&admin, u).await;
        }
        for (user, org) in [("mia", &acme), ("mia", &rival), ("rob", &rival), ("dev", &rival)] {
            role(&admin, "organization_user", user, ("organization", org)).await;
        }
        for (user, org) in [("mia", &acme), ("mia", &rival), ("rob", &rival)] {
            let (st, e) = role(&admin, "organization_manager", user, ("organization", org)).await;
            assert_eq!(st, StatusCode::CREATED, "{e}");
        }
        role(&admin, "space_developer", "dev", ("space", &rival_space)).await;
        let (mia, rob, dev) =
            (login(&p.url, "mia").await, login(&p.url, "rob").await, login(&p.url, "dev").await);
        let (st, d) = mia
            .post("/v3/domains", json!({"name": "acme.example.com", "relationships": {"organization": {"data": {"guid": acme}}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{d}");
        let domain = guid(&d);
        let rel = format!("/v3/domains/{domain}/relationships/shared_organizations");
        let route = |host: &str| json!({"host": host, "relationships": {"space": {"data": {"guid": rival_space}}, "domain": {"data": {"guid": domain}}}});

        // Before the share: rival's developer neither sees the domain nor routes on it.
        let (st, _) = dev.get(&format!("/v3/domains/{domain}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, e) = dev.post("/v3/routes", route("web")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

        // Refusals, nothing shared by any.
        let (st, e) = mia.post(&rel, json!({"data": [{"guid": acme}]})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(
            e["errors"][0]["detail"].as_str().expect("detail").contains("cannot be shared with it"),
            "{e}"
        );
        let (st, e) = mia.post(&rel, json!({"data": [{"guid": other}]})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(
            e["errors"][0]["detail"],
            format!(
                "Organization with guid '{other}' does not exist or you do not have access to it."
            )
        );
        let (st, e) = mia.post(&rel, json!({"data": "rival"})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, _) = rob.post(&rel, json!({"data": [{"guid": rival}]})).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "rob cannot read acme's domain");
        let (_, apps_domain) = admin.get("/v3/domains?names=apps.localhost").await;
        let shared_domain = guid(&apps_domain["resources"][0]);
        let (st, _) = admin
            .post(
                &format!("/v3/domains/{shared_domain}/relationships/shared_organizations"),
                json!({"data": [{"guid": rival}]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, v) = admin.get(&rel).await;
        assert!(shared(&v).is_empty(), "{v}");

        // Shared: shown to both orgs' users (rival's see only orgs they read), usable by rival.
        let (st, v) = mia.post(&rel, json!({"data": [{"guid": rival}]})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(shared(&v), vec![rival.clone()]);
        let (st, again) = mia.post(&rel, json!({"data": [{"guid": rival}]})).await;
        assert_eq!((st, shared(&again)), (StatusCode::OK, vec![rival.clone()]));
        let (st, seen) = dev.get(&format!("/v3/domains/{domain}")).await;
        assert_eq!(st, StatusCode::OK, "{seen}");
        assert_eq!(seen["relationships"]["shared_organizations"]["data"], json!([{"guid": rival}]));
        let (_, list) = dev.get("/v3/domains").await;
        let names: Vec<&str> = list["resources"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        assert!(names.contains(&"acme.example.com"), "{names:?}");
        let (_, list) = dev.get(&format!("/v3/organizations/{rival}/domains")).await;
        assert!(list.to_string().contains("acme.example.com"), "{list}");
        let (st, r) = dev.post("/v3/routes", route("web")).await;
        assert_eq!(st, StatusCode::CREATED, "{r}");

        // Unsharing is refused while rival routes on it; then taken back by rival's manager.
        let path = format!("{rel}/{rival}");
        let (st, e) = rob.send(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(
            e["errors"][0]["detail"].as_str().expect("detail").contains("associated routes"),
            "{e}"
        );
        let (st, _) =
            dev.send(reqwest::Method::DELETE, &format!("/v3/routes/{}", guid(&r)), None).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let (st, e) = dev.send(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let (st, e) = rob.send(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
        let (st, e) = rob.send(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "rob no longer sees the domain: {e}");
        let (st, _) = dev.get(&format!("/v3/domains/{domain}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = dev.post("/v3/routes", route("web2")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

        // Deleting the org a domain is shared with takes the share with it.
        mia.post(&rel, json!({"data": [{"guid": rival}]})).await;
        let job = admin.delete_job(&format!("/v3/organizations/{rival}")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        let (_, v) = admin.get(&rel).await;
        assert!(shared(&v).is_empty(), "{v}");
        p.stop().await;
    }
}
