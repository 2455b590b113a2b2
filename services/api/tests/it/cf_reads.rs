//! What cf v8 reads besides the resources themselves, on both engines: isolation segments and
//! the org and space relationships to them (`cf org`, `cf space`), an app's permissions, and
//! environment variable groups reaching instances, tasks and stagings.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, login, role};

const SHARED: &str = "933b4c58-120b-499a-b85d-4b6fc9e2903b";

fn names(page: &Value) -> Vec<String> {
    page["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn cf_org_space_and_env_reads_answer() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "acme").await;
        let (other_org, _) = crate::push::org_and_space(&admin, "other").await;
        create_user(&admin, "dev").await;
        create_user(&admin, "auditor").await;
        create_user(&admin, "loner").await;
        assert_eq!(role(&admin, "organization_user", "dev", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "dev", ("space", &space)).await.0, 201);
        assert_eq!(
            role(&admin, "organization_user", "auditor", ("organization", &org)).await.0,
            201
        );
        assert_eq!(role(&admin, "space_auditor", "auditor", ("space", &space)).await.0, 201);
        let dev = login(&p.url, "dev").await;
        let auditor = login(&p.url, "auditor").await;
        let loner = login(&p.url, "loner").await;

        // Every link of GET /v3 leads somewhere (resource_matches takes only POST, as in CC).
        let (_, root) = admin.get("/v3").await;
        let links = root["links"].as_object().expect("links");
        assert!(links.len() > 20, "{root}");
        for (name, link) in links {
            let (st, body) = admin.get(link["href"].as_str().expect("href")).await;
            let want_ok = name != "resource_matches";
            assert!(
                if want_ok { st == StatusCode::OK } else { st == StatusCode::METHOD_NOT_ALLOWED },
                "{name}: {st} {body}"
            );
        }

        // Isolation segments: the shared one, to members of an org.
        let (st, segs) = dev.get(&format!("/v3/isolation_segments?organization_guids={org}")).await;
        assert_eq!(st, StatusCode::OK, "{segs}");
        assert_eq!(names(&segs), ["shared"]);
        assert_eq!(segs["resources"][0]["guid"], SHARED);
        assert_eq!(
            names(
                &dev.get(&format!("/v3/isolation_segments?organization_guids={other_org}")).await.1
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            names(&dev.get("/v3/isolation_segments?names=gpu").await.1),
            Vec::<String>::new()
        );
        assert_eq!(names(&loner.get("/v3/isolation_segments").await.1), Vec::<String>::new());
        assert_eq!(names(&admin.get("/v3/isolation_segments").await.1), ["shared"]);
        let (st, _) = dev.get(&format!("/v3/isolation_segments/{SHARED}")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            loner.get(&format!("/v3/isolation_segments/{SHARED}")).await.0,
            StatusCode::NOT_FOUND
        );
        let (st, e) = dev.get("/v3/isolation_segments?colour=blue").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        let (st, rel) = dev
            .get(&format!("/v3/organizations/{org}/relationships/default_isolation_segment"))
            .await;
        assert_eq!(st, StatusCode::OK, "{rel}");
        assert_eq!(rel["data"], Value::Null);
        assert!(rel["links"]["self"]["href"]
            .as_str()
            .expect("self")
            .ends_with("default_isolation_segment"));
        let (st, _) = dev
            .get(&format!("/v3/organizations/{other_org}/relationships/default_isolation_segment"))
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "another tenant's org");
        let (st, rel) =
            dev.get(&format!("/v3/spaces/{space}/relationships/isolation_segment")).await;
        assert_eq!((st, &rel["data"]), (StatusCode::OK, &Value::Null), "{rel}");
        assert_eq!(
            loner.get(&format!("/v3/spaces/{space}/relationships/isolation_segment")).await.0,
            StatusCode::NOT_FOUND
        );

        // An app's permissions: developers read its secrets, auditors do not.
        let (_, app) = dev
            .post("/v3/apps", json!({"name": "web", "environment_variables": {"MODE": "app"}, "relationships": {"space": {"data": {"guid": space}}}}))
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let (st, perm) = dev.get(&format!("/v3/apps/{app}/permissions")).await;
        assert_eq!(st, StatusCode::OK, "{perm}");
        assert_eq!(perm, json!({"read_basic_data": true, "read_sensitive_data": true}));
        let (_, perm) = auditor.get(&format!("/v3/apps/{app}/permissions")).await;
        assert_eq!(perm, json!({"read_basic_data": true, "read_sensitive_data": false}));
        assert_eq!(
            loner.get(&format!("/v3/apps/{app}/permissions")).await.0,
            StatusCode::NOT_FOUND
        );

        // Environment variable groups: read by anyone, changed by admins, under the app's own.
        let (st, g) = dev.get("/v3/environment_variable_groups/running").await;
        assert_eq!(st, StatusCode::OK, "{g}");
        assert_eq!(
            (&g["var"], &g["updated_at"], &g["name"]),
            (&json!({}), &Value::Null, &json!("running"))
        );
        assert_eq!(
            dev.get("/v3/environment_variable_groups/sometimes").await.0,
            StatusCode::NOT_FOUND
        );
        let (st, e) =
            dev.patch("/v3/environment_variable_groups/running", json!({"var": {"A": "1"}})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let running = json!({"var": {"PROXY": "http://proxy:3128", "MODE": "group", "GONE": "x"}});
        let (st, g) = admin.patch("/v3/environment_variable_groups/running", running).await;
        assert_eq!(st, StatusCode::OK, "{g}");
        assert!(g["updated_at"].is_string());
        let (_, g) = admin
            .patch("/v3/environment_variable_groups/running", json!({"var": {"GONE": null}}))
            .await;
        assert_eq!(g["var"], json!({"PROXY": "http://proxy:3128", "MODE": "group"}));
        for bad in [
            json!({"var": {"N": 5}}),
            json!({"var": {"VCAP_X": "1"}}),
            json!({"var": "A=1"}),
            json!({"vars": {}}),
        ] {
            let (st, e) = admin.patch("/v3/environment_variable_groups/running", bad.clone()).await;
            assert!(st.is_client_error(), "{bad}: {e}");
        }
        let (_, g) = admin.get("/v3/environment_variable_groups/running").await;
        assert_eq!(
            g["var"],
            json!({"PROXY": "http://proxy:3128", "MODE": "group"}),
            "refusals change nothing"
        );
        admin
            .patch(
                "/v3/environment_variable_groups/staging",
                json!({"var": {"PIP_INDEX_URL": "http://mirror/simple"}}),
            )
            .await;

        let (_, droplet) = crate::push::push_bits(&dev, &app, &[("app.py", b"print(1)")]).await;
        let staged = p.staged.lock().expect("lock").last().cloned().expect("staging request");
        assert_eq!(staged.env["PIP_INDEX_URL"], "http://mirror/simple", "the staging group stages");
        assert!(!staged.env.contains_key("PROXY"), "the running group does not");
        dev.patch(
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            json!({"data": {"guid": droplet}}),
        )
        .await;
        let (st, started) = dev.post(&format!("/v3/apps/{app}/actions/start"), json!({})).await;
        assert_eq!(st, StatusCode::OK, "{started}");
        let env = p
            .desired
            .lock()
            .expect("lock")
            .values()
            .find(|l| l.log_guid == app)
            .expect("desired")
            .env
            .clone();
        assert_eq!(env["PROXY"], "http://proxy:3128");
        assert_eq!(env["MODE"], "app", "the app's own variable wins");
        assert!(!env.contains_key("PIP_INDEX_URL"));
        let (_, shown) = dev.get(&format!("/v3/apps/{app}/env")).await;
        assert_eq!(shown["running_env_json"]["PROXY"], "http://proxy:3128", "{shown}");
        assert_eq!(shown["staging_env_json"]["PIP_INDEX_URL"], "http://mirror/simple");
        let (st, t) = dev.post(&format!("/v3/apps/{app}/tasks"), json!({"command": "env"})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{t}");
        let held = p.tasks.held.lock().expect("lock").values().next().cloned().expect("task");
        assert_eq!(held.definition.env["PROXY"], "http://proxy:3128", "tasks run with the group");

        // Usage summaries: the started instance and the running task, the routes.
        let (_, domains) = admin.get("/v3/domains").await;
        let domain = domains["resources"][0]["guid"].as_str().expect("domain").to_owned();
        for host in ["one", "two"] {
            let (st, r) = dev
                .post("/v3/routes", json!({"host": host, "relationships": {"space": {"data": {"guid": space}}, "domain": {"data": {"guid": domain}}}}))
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
        }
        let (_, r) = dev.get("/v3/routes?hosts=one").await;
        let one = r["resources"][0]["guid"].as_str().expect("route").to_owned();
        let dest = json!({"destinations": [{"app": {"guid": app}}]});
        let (st, d) = dev.post(&format!("/v3/routes/{one}/destinations"), dest).await;
        assert_eq!(st, StatusCode::OK, "{d}");
        let (st, u) = auditor.get(&format!("/v3/spaces/{space}/usage_summary")).await;
        assert_eq!(st, StatusCode::OK, "{u}");
        assert_eq!(u["usage_summary"]["started_instances"], 1, "{u}");
        assert_eq!(u["usage_summary"]["routes"], 2, "{u}");
        assert_eq!(u["usage_summary"]["per_app_tasks"], 1, "{u}");
        assert!(u["usage_summary"]["memory_in_mb"].as_i64().expect("memory") > 0, "{u}");
        let (st, ou) = dev.get(&format!("/v3/organizations/{org}/usage_summary")).await;
        assert_eq!(st, StatusCode::OK, "{ou}");
        assert_eq!(ou["usage_summary"], u["usage_summary"], "one space: the org's is the same");
        assert_eq!(
            dev.get(&format!("/v3/organizations/{other_org}/usage_summary")).await.0,
            StatusCode::NOT_FOUND
        );

        // The apps of a stack, as the caller sees them.
        let (st, on) = dev.get("/v3/stacks/bookworm/apps").await;
        assert_eq!((st, names(&on)), (StatusCode::OK, vec!["web".to_owned()]), "{on}");
        assert_eq!(names(&loner.get("/v3/stacks/bookworm/apps").await.1), Vec::<String>::new());
        assert_eq!(dev.get("/v3/stacks/plan9/apps").await.0, StatusCode::NOT_FOUND);

        // Orphaned routes: only those without a destination go, and only with unmapped=true.
        let (st, e) =
            dev.send(reqwest::Method::DELETE, &format!("/v3/spaces/{space}/routes"), None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, e) = auditor
            .send(
                reqwest::Method::DELETE,
                &format!("/v3/spaces/{space}/routes?unmapped=true"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let job = dev.delete_job(&format!("/v3/spaces/{space}/routes?unmapped=true")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        let (_, left) = dev.get(&format!("/v3/routes?space_guids={space}")).await;
        let hosts: Vec<&str> = left["resources"]
            .as_array()
            .expect("routes")
            .iter()
            .filter_map(|r| r["host"].as_str())
            .collect();
        assert_eq!(hosts, ["one"], "the mapped route stays");
        p.stop().await;
    }
}
