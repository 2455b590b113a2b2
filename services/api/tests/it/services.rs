//! User-provided service instances and their bindings, on both engines: validation, the CF
//! shapes, `VCAP_SERVICES`, the drain list the logs service reads, cascades, and another
//! tenant's ids answering 404 / 422 as CF does.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, role};

fn detail(v: &Value) -> String {
    v["errors"][0]["detail"].as_str().unwrap_or_default().to_owned()
}

async fn drains(p: &harness::Platform) -> Vec<wire::drains::SyslogDrain> {
    let token = harness::component_token(&p.url).await;
    let res = reqwest::Client::new()
        .get(format!("{}/internal/v1/syslog_drains", p.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("drains");
    assert_eq!(res.status(), 200);
    res.json::<wire::drains::SyslogDrains>().await.expect("json").drains
}

#[tokio::test]
async fn user_provided_services_bind_into_vcap_services_and_drains() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "My Org").await;
        let (_, other_space) = crate::push::org_and_space(&admin, "other-org").await;
        let (_, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "drained", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let ups = |extra: Value| {
            let mut b = json!({"type": "user-provided", "name": "logs", "relationships": {"space": {"data": {"guid": space}}}});
            for (k, v) in extra.as_object().expect("object") {
                b[k] = v.clone();
            }
            b
        };

        // Bad input: clear errors, nothing created.
        let res = admin
            .http
            .post(format!("{}/v3/service_instances", p.url))
            .bearer_auth(&p.admin_token)
            .header("content-type", "application/json")
            .body("{\"type\": ")
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 400);
        for (body, want) in [
            (json!({"type": "managed", "name": "x"}), "Relationships 'space' must be set"),
            (json!({"type": "other", "name": "x"}), "Type must be one of"),
            (ups(json!({"name": ""})), "name can't be blank"),
            (ups(json!({"syslog_drain_url": "syslog://no-port.example.com"})), "needs a port"),
            (
                ups(json!({"syslog_drain_url": "ftp://x.example.com:21"})),
                "Syslog drain url must be",
            ),
            (ups(json!({"route_service_url": "http://insecure.example.com"})), "must be https"),
            (ups(json!({"credentials": "secret"})), "Credentials must be an object"),
            (ups(json!({"tags": [1]})), "Tags must be a list of strings"),
            (
                json!({"type": "user-provided", "name": "x", "relationships": {"space": {"data": {"guid": "nope"}}}}),
                "Invalid space",
            ),
        ] {
            let (st, e) = admin.post("/v3/service_instances", body.clone()).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
            assert!(detail(&e).contains(want), "{body}: {e}");
        }
        assert_eq!(admin.get("/v3/service_instances").await.1["pagination"]["total_results"], 0);

        // Create.
        let drain_url = "syslog://127.0.0.1:5140?drain-data=all";
        let (st, si) = admin
            .post(
                "/v3/service_instances",
                ups(json!({"credentials": {"uri": "postgres://db.example.com/x"}, "tags": ["sql"],
                           "syslog_drain_url": drain_url, "metadata": {"labels": {"team": "a"}}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{si}");
        assert_eq!(si["type"], "user-provided");
        assert_eq!(si["syslog_drain_url"], drain_url);
        assert_eq!(si["route_service_url"], Value::Null);
        assert_eq!(si["tags"], json!(["sql"]));
        assert_eq!(si["last_operation"]["state"], "succeeded");
        assert_eq!(si["relationships"]["space"]["data"]["guid"], space.as_str());
        assert_eq!(si["metadata"]["labels"]["team"], "a");
        assert!(si.get("credentials").is_none(), "credentials are not shown with the instance");
        let si = si["guid"].as_str().expect("guid").to_owned();
        let (st, e) = admin.post("/v3/service_instances", ups(json!({}))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(detail(&e), "The service instance name is taken: logs.");
        let (st, creds) = admin.get(&format!("/v3/service_instances/{si}/credentials")).await;
        assert_eq!((st, creds), (StatusCode::OK, json!({"uri": "postgres://db.example.com/x"})));
        for (q, n) in [
            ("names=logs", 1),
            ("type=managed", 0),
            ("type=user-provided", 1),
            (&format!("space_guids={other_space}"), 0),
            (&format!("organization_guids={org}"), 1),
            ("label_selector=team%3Da", 1),
        ] {
            let (st, v) = admin.get(&format!("/v3/service_instances?{q}")).await;
            assert_eq!(st, StatusCode::OK, "{q}: {v}");
            assert_eq!(v["pagination"]["total_results"], n, "{q}");
        }

        // Bind.
        let binding = |kind: &str, app: &str, si: &str| json!({"type": kind, "relationships": {"app": {"data": {"guid": app}}, "service_instance": {"data": {"guid": si}}}});
        let (st, e) =
            admin.post("/v3/service_credential_bindings", binding("key", &app, &si)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, e) =
            admin.post("/v3/service_credential_bindings", binding("app", "nope", &si)).await;
        assert_eq!(
            (st, detail(&e)),
            (StatusCode::UNPROCESSABLE_ENTITY, "The app could not be found: nope".into())
        );
        let (_, elsewhere) = admin
            .post("/v3/apps", json!({"name": "elsewhere", "relationships": {"space": {"data": {"guid": other_space}}}}))
            .await;
        let elsewhere = elsewhere["guid"].as_str().expect("guid").to_owned();
        let (st, e) =
            admin.post("/v3/service_credential_bindings", binding("app", &elsewhere, &si)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&e).contains("different spaces"), "{e}");
        let (st, b) =
            admin.post("/v3/service_credential_bindings", binding("app", &app, &si)).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!((b["type"].as_str(), b["name"].clone()), (Some("app"), Value::Null));
        assert_eq!(b["relationships"]["app"]["data"]["guid"], app.as_str());
        let b = b["guid"].as_str().expect("guid").to_owned();
        let (st, e) =
            admin.post("/v3/service_credential_bindings", binding("app", &app, &si)).await;
        assert_eq!(
            (st, detail(&e)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "The app is already bound to the service instance".into()
            )
        );
        let (_, details) = admin.get(&format!("/v3/service_credential_bindings/{b}/details")).await;
        assert_eq!(details["credentials"]["uri"], "postgres://db.example.com/x");
        assert_eq!(details["syslog_drain_url"], drain_url);
        let (_, list) = admin
            .get("/v3/service_credential_bindings?app_names=DRAINED&include=app,service_instance")
            .await;
        assert_eq!(list["pagination"]["total_results"], 1, "{list}");
        assert_eq!(list["included"]["apps"][0]["name"], "drained");
        assert_eq!(list["included"]["service_instances"][0]["name"], "logs");
        assert_eq!(
            admin.get("/v3/service_credential_bindings?service_instance_names=other").await.1
                ["pagination"]["total_results"],
            0
        );

        // VCAP_SERVICES and the drain list.
        let (_, env) = admin.get(&format!("/v3/apps/{app}/env")).await;
        let ups_env = &env["system_env_json"]["VCAP_SERVICES"]["user-provided"][0];
        assert_eq!(ups_env["label"], "user-provided");
        assert_eq!(ups_env["name"], "logs");
        assert_eq!(ups_env["instance_guid"], si.as_str());
        assert_eq!(ups_env["binding_guid"], b.as_str());
        assert_eq!(ups_env["credentials"]["uri"], "postgres://db.example.com/x");
        assert_eq!(ups_env["syslog_drain_url"], drain_url);
        assert_eq!(
            drains(&p).await,
            vec![wire::drains::SyslogDrain {
                binding_guid: b.clone(),
                app_guid: app.clone(),
                url: drain_url.into(),
                hostname: "My-Org.dev.drained".into(),
            }]
        );
        let res = reqwest::Client::new()
            .get(format!("{}/internal/v1/syslog_drains", p.url))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .expect("drains");
        assert_eq!(res.status(), 403, "only platform components read the drain list");

        // Updates show at once in the drain list.
        let (st, v) = admin
            .patch(
                &format!("/v3/service_instances/{si}"),
                json!({"syslog_drain_url": "syslog-tls://logs.example.com:6514"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["last_operation"]["type"], "update");
        assert_eq!(drains(&p).await[0].url, "syslog-tls://logs.example.com:6514");
        let (st, _) = admin
            .patch(&format!("/v3/service_instances/{si}"), json!({"syslog_drain_url": "nope"}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            drains(&p).await[0].url,
            "syslog-tls://logs.example.com:6514",
            "a refused update changes nothing"
        );

        // Another tenant: nothing to see or touch.
        create_user(&admin, "mallory").await;
        let (_, mo) = admin.get("/v3/organizations?names=other-org").await;
        let other_org = mo["resources"][0]["guid"].as_str().expect("org").to_owned();
        assert_eq!(
            role(&admin, "organization_user", "mallory", ("organization", &other_org)).await.0,
            StatusCode::CREATED
        );
        assert_eq!(
            role(&admin, "space_developer", "mallory", ("space", &other_space)).await.0,
            StatusCode::CREATED
        );
        let mallory =
            Client::new(&p.url, &harness::password_token(&p.url, "mallory", "mallory-pw").await);
        for path in [
            format!("/v3/service_instances/{si}"),
            format!("/v3/service_instances/{si}/credentials"),
            format!("/v3/service_credential_bindings/{b}"),
            format!("/v3/service_credential_bindings/{b}/details"),
        ] {
            let (st, e) = mallory.get(&path).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {e}");
        }
        assert_eq!(mallory.get("/v3/service_instances").await.1["pagination"]["total_results"], 0);
        assert_eq!(
            mallory.get("/v3/service_credential_bindings").await.1["pagination"]["total_results"],
            0
        );
        let (st, e) =
            mallory.post("/v3/service_credential_bindings", binding("app", &elsewhere, &si)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&e).contains("service instance could not be found"), "{e}");
        let (st, _) =
            mallory.patch(&format!("/v3/service_instances/{si}"), json!({"name": "mine"})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = mallory
            .send(reqwest::Method::DELETE, &format!("/v3/service_credential_bindings/{b}"), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert_eq!(drains(&p).await.len(), 1, "nothing was touched");

        // Unbind, rebind, delete the instance (its bindings go with it), delete the app.
        let (st, _) = admin
            .send(reqwest::Method::DELETE, &format!("/v3/service_credential_bindings/{b}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert!(drains(&p).await.is_empty());
        assert_eq!(
            admin.get(&format!("/v3/apps/{app}/env")).await.1["system_env_json"]["VCAP_SERVICES"],
            json!({})
        );
        let (st, _) =
            admin.post("/v3/service_credential_bindings", binding("app", &app, &si)).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, _) =
            admin.send(reqwest::Method::DELETE, &format!("/v3/service_instances/{si}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            admin.get("/v3/service_credential_bindings").await.1["pagination"]["total_results"],
            0
        );
        assert!(drains(&p).await.is_empty());
        let (_, si2) =
            admin.post("/v3/service_instances", ups(json!({"syslog_drain_url": drain_url}))).await;
        let si2 = si2["guid"].as_str().expect("guid").to_owned();
        let (st, _) =
            admin.post("/v3/service_credential_bindings", binding("app", &app, &si2)).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, _) = admin.send(reqwest::Method::DELETE, &format!("/v3/apps/{app}"), None).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        testkit::eventually("app deleted", std::time::Duration::from_secs(10), || async {
            (admin.get("/v3/service_credential_bindings").await.1["pagination"]["total_results"]
                == 0)
                .then_some(())
        })
        .await
        .expect("bindings go with the app");
        assert!(drains(&p).await.is_empty());
        p.stop().await;
    }
}
