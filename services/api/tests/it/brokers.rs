//! Managed services through a real service broker (`testkit::broker`), on both engines:
//! registering it (and a broken catalog failing the job with the broker's words), plans
//! enabled for one org only, an async instance provisioned, bound into `VCAP_SERVICES`, a
//! service key, updates, unbinding and deprovisioning, and every failure plan leaving a failed
//! last operation and nothing at the broker.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, role};

pub const USER: &str = "broker-user";
pub const PASSWORD: &str = "broker-pw";

fn detail(v: &Value) -> String {
    v["errors"][0]["detail"].as_str().unwrap_or_default().to_owned()
}

/// Send a request answered 202 and wait for its job.
pub async fn job(c: &Client, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = c.http.request(method.clone(), format!("{}{path}", c.url)).bearer_auth(&c.token);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let loc = res.headers().get("location").map(|l| l.to_str().expect("location").to_owned());
    let text = res.text().await.expect("body");
    assert_eq!(status, 202, "{method} {path}: {text}");
    c.wait_job(&loc.expect("location")).await
}

async fn broker_state(url: &str) -> Value {
    reqwest::get(format!("{url}/test/state")).await.expect("state").json().await.expect("json")
}

pub async fn plan_guid(c: &Client, name: &str) -> String {
    let (st, plans) = c.get(&format!("/v3/service_plans?names={name}")).await;
    assert_eq!(st, StatusCode::OK, "{plans}");
    plans["resources"][0]["guid"]
        .as_str()
        .unwrap_or_else(|| panic!("plan {name}: {plans}"))
        .to_owned()
}

pub fn managed(name: &str, space: &str, plan: &str) -> Value {
    json!({"type": "managed", "name": name, "parameters": {"size": 1}, "tags": ["mine"],
           "relationships": {"space": {"data": {"guid": space}},
                             "service_plan": {"data": {"guid": plan}}}})
}

#[tokio::test]
async fn managed_services_go_through_the_broker_and_leave_no_orphans() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let broker = testkit::broker::start(USER, PASSWORD).await;
        let p = harness::start(&db, |c| {
            c.broker_timeout_secs = 2;
        })
        .await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org_a, space_a) = crate::push::org_and_space(&admin, "team-a").await;
        let (_, space_b) = crate::push::org_and_space(&admin, "team-b").await;
        create_user(&admin, "alice").await;
        create_user(&admin, "bob").await;
        assert_eq!(
            role(&admin, "organization_user", "alice", ("organization", &org_a)).await.0,
            201
        );
        assert_eq!(role(&admin, "space_developer", "alice", ("space", &space_a)).await.0, 201);
        let (_, org_b) = admin.get(&format!("/v3/spaces/{space_b}")).await;
        let org_b = org_b["relationships"]["organization"]["data"]["guid"]
            .as_str()
            .expect("org")
            .to_owned();
        assert_eq!(role(&admin, "organization_user", "bob", ("organization", &org_b)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "bob", ("space", &space_b)).await.0, 201);
        let alice =
            Client::new(&p.url, &harness::password_token(&p.url, "alice", "alice-pw").await);
        let bob = Client::new(&p.url, &harness::password_token(&p.url, "bob", "bob-pw").await);

        // Bad input and missing rights: CF errors, nothing registered.
        let res = admin
            .http
            .post(format!("{}/v3/service_brokers", p.url))
            .bearer_auth(&p.admin_token)
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 400);
        let reg = |name: &str, url: &str| {
            json!({"name": name, "url": url, "authentication": {"type": "basic",
                   "credentials": {"username": USER, "password": PASSWORD}}})
        };
        for (body, want) in [
            (json!({"name": "x", "url": broker}), "Authentication must be"),
            (reg("x", "not a url"), "Url must be a valid url"),
            (json!({"name": "x", "url": broker, "authentication": {"type": "oauth"}}), "basic"),
        ] {
            let (st, e) = admin.post("/v3/service_brokers", body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
            assert!(detail(&e).contains(want), "{e}");
        }
        let (st, _) = alice.post("/v3/service_brokers", reg("mine", &broker)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        // A broker whose catalog fails: the job fails with the broker's words.
        let j = job(
            &admin,
            reqwest::Method::POST,
            "/v3/service_brokers",
            Some(reg("broken", &format!("{broker}/broken"))),
        )
        .await;
        assert_eq!(j["state"], "FAILED", "{j}");
        assert_eq!(j["errors"][0]["title"], "CF-ServiceBrokerCatalogInvalid", "{j}");
        assert!(
            detail(&json!({"errors": j["errors"]})).contains("The catalog is being rebuilt"),
            "{j}"
        );
        assert_eq!(
            admin.get("/v3/service_brokers?names=broken").await.1["pagination"]["total_results"],
            0
        );

        // Registered: its catalog becomes an offering with plans, visible to admins only.
        let j = job(
            &admin,
            reqwest::Method::POST,
            "/v3/service_brokers",
            Some(reg("test-broker", &broker)),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (st, e) = admin.post("/v3/service_brokers", reg("test-broker", &broker)).await;
        assert_eq!(
            (st, e["errors"][0]["title"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("CF-UniquenessError"))
        );
        let (_, brokers) = admin.get("/v3/service_brokers").await;
        assert_eq!(brokers["resources"][0]["name"], "test-broker");
        assert_eq!(brokers["resources"][0]["relationships"], json!({}));
        assert!(brokers["resources"][0].get("authentication").is_none(), "{brokers}");
        let state = broker_state(&broker).await;
        let catalog_req = state["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .find(|r| r["path"] == "/v2/catalog")
            .expect("catalog request")
            .clone();
        assert_eq!(catalog_req["api_version"], "2.17");
        assert!(catalog_req["originating_identity"]
            .as_str()
            .expect("id")
            .starts_with("cloudfoundry "));
        let (_, offerings) = admin.get("/v3/service_offerings").await;
        assert_eq!(offerings["resources"][0]["name"], "test-db", "{offerings}");
        assert_eq!(offerings["resources"][0]["broker_catalog"]["features"]["bindable"], true);
        let (_, plans) = admin
            .get(
                "/v3/service_plans?service_offering_names=test-db&service_broker_names=test-broker",
            )
            .await;
        assert_eq!(plans["pagination"]["total_results"], 7, "{plans}");
        assert!(plans["resources"]
            .as_array()
            .expect("plans")
            .iter()
            .all(|p| p["visibility_type"] == "admin"));
        assert_eq!(alice.get("/v3/service_offerings").await.1["pagination"]["total_results"], 0);
        assert_eq!(alice.get("/v3/service_plans").await.1["pagination"]["total_results"], 0);
        let (st, _) = alice.get("/v3/service_brokers").await;
        assert_eq!(st, StatusCode::OK);

        // Enabled for team-a only: alice sees the plans, bob does not.
        let mut plan = std::collections::BTreeMap::new();
        for name in testkit::broker::PLANS {
            let g = plan_guid(&admin, name).await;
            let (st, v) = admin
                .post(
                    &format!("/v3/service_plans/{g}/visibility"),
                    json!({"type": "organization", "organizations": [{"guid": org_a}]}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            plan.insert(name, g);
        }
        let (st, e) = admin
            .patch(
                &format!("/v3/service_plans/{}/visibility", plan["sync"]),
                json!({"type": "organization", "organizations": [{"guid": "no-such-org"}]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (_, v) = alice.get(&format!("/v3/service_plans/{}/visibility", plan["sync"])).await;
        assert_eq!(v["type"], "organization");
        assert_eq!(v["organizations"][0]["guid"], org_a.as_str(), "{v}");
        assert_eq!(v["organizations"][0]["name"], "team-a");
        // As cf's marketplace asks: plans with their offerings and brokers.
        let (_, m) = alice
            .get(&format!("/v3/service_plans?include=service_offering&space_guids={space_a}&fields[service_offering.service_broker]=name,guid"))
            .await;
        assert_eq!(m["included"]["service_offerings"][0]["name"], "test-db", "{m}");
        assert_eq!(m["included"]["service_brokers"][0]["name"], "test-broker", "{m}");
        let (_, m) = alice.get("/v3/service_offerings?fields[service_broker]=name,guid").await;
        assert_eq!(m["included"]["service_brokers"][0]["name"], "test-broker", "{m}");
        let (_, seen) = alice.get(&format!("/v3/service_plans?space_guids={space_a}")).await;
        assert_eq!(seen["pagination"]["total_results"], 7, "{seen}");
        assert_eq!(
            alice.get("/v3/service_offerings?names=test-db").await.1["pagination"]["total_results"],
            1
        );
        assert_eq!(bob.get("/v3/service_plans").await.1["pagination"]["total_results"], 0);
        assert_eq!(bob.get("/v3/service_offerings").await.1["pagination"]["total_results"], 0);
        assert_eq!(
            bob.get(&format!("/v3/service_plans/{}", plan["sync"])).await.0,
            StatusCode::NOT_FOUND
        );
        let (st, e) =
            bob.post("/v3/service_instances", managed("db", &space_b, &plan["sync"])).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(detail(&e).contains("Invalid service plan"), "{e}");
        let (st, e) = alice
            .patch(
                &format!("/v3/service_plans/{}/visibility", plan["sync"]),
                json!({"type": "public"}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let (st, e) =
            alice.post("/v3/service_instances", managed("db", &space_a, "no-such-plan")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, e) = alice.post("/v3/service_instances", json!({"type": "managed", "name": "db", "parameters": "big",
            "relationships": {"space": {"data": {"guid": space_a}}, "service_plan": {"data": {"guid": plan["async"]}}}})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

        // An async instance: in progress at once, then succeeded.
        let res = alice
            .http
            .post(format!("{}/v3/service_instances", p.url))
            .bearer_auth(&alice.token)
            .json(&managed("db", &space_a, &plan["async"]))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), 202);
        let loc = res.headers()["location"].to_str().expect("location").to_owned();
        let (_, list) = alice.get("/v3/service_instances?names=db").await;
        let si = list["resources"][0].clone();
        let guid = si["guid"].as_str().expect("guid").to_owned();
        assert_eq!(si["type"], "managed");
        assert_eq!(si["relationships"]["service_plan"]["data"]["guid"], plan["async"].as_str());
        assert_eq!(si["last_operation"]["type"], "create");
        assert_eq!(si["last_operation"]["state"], "in progress", "{si}");
        let j = alice.wait_job(&loc).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, si) = alice.get(&format!("/v3/service_instances/{guid}")).await;
        assert_eq!(si["last_operation"]["state"], "succeeded", "{si}");
        assert_eq!(
            broker_state(&broker).await["instances"][&guid]["parameters"],
            json!({"size": 1})
        );
        assert_eq!(
            bob.get(&format!("/v3/service_instances/{guid}")).await.0,
            StatusCode::NOT_FOUND
        );

        // Bound to an app: VCAP_SERVICES under the offering's name.
        let (_, app) = alice
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space_a}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let (st, e) = bob.post("/v3/service_credential_bindings", json!({"type": "app", "relationships": {"service_instance": {"data": {"guid": guid}}, "app": {"data": {"guid": app}}}})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        // The async plan binds asynchronously too: in progress, then succeeded.
        let res = alice.http.post(format!("{}/v3/service_credential_bindings", p.url)).bearer_auth(&alice.token)
            .json(&json!({"type": "app", "name": "primary",
                "relationships": {"service_instance": {"data": {"guid": guid}}, "app": {"data": {"guid": app}}}}))
            .send().await.expect("bind");
        assert_eq!(res.status(), 202);
        let loc = res.headers()["location"].to_str().expect("location").to_owned();
        let (_, bs) = alice.get(&format!("/v3/service_credential_bindings?app_guids={app}")).await;
        assert_eq!(bs["resources"][0]["last_operation"]["state"], "in progress", "{bs}");
        assert_eq!(bs["resources"][0]["type"], "app");
        assert_eq!(
            alice.get(&format!("/v3/apps/{app}/env")).await.1["system_env_json"]["VCAP_SERVICES"],
            json!({})
        );
        let j = alice.wait_job(&loc).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, bs) = alice.get(&format!("/v3/service_credential_bindings?app_guids={app}")).await;
        assert_eq!(bs["resources"][0]["last_operation"]["state"], "succeeded", "{bs}");
        let (_, env) = alice.get(&format!("/v3/apps/{app}/env")).await;
        let vcap = &env["system_env_json"]["VCAP_SERVICES"]["test-db"][0];
        assert_eq!(vcap["label"], "test-db", "{env}");
        assert_eq!(vcap["plan"], "async");
        assert_eq!(vcap["name"], "primary");
        assert_eq!(vcap["instance_name"], "db");
        assert_eq!(vcap["binding_name"], "primary");
        assert_eq!(vcap["provider"], Value::Null);
        assert_eq!(vcap["tags"], json!(["test", "db", "mine"]));
        assert_eq!(vcap["volume_mounts"], json!([]));
        assert_eq!(vcap["syslog_drain_url"], Value::Null);
        assert!(
            vcap["credentials"]["uri"].as_str().expect("uri").starts_with("testdb://"),
            "{vcap}"
        );

        // A service key, read back.
        let j = job(
            &alice,
            reqwest::Method::POST,
            "/v3/service_credential_bindings",
            Some(json!({"type": "key", "name": "k1",
            "relationships": {"service_instance": {"data": {"guid": guid}}}})),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, keys) = alice
            .get(&format!("/v3/service_credential_bindings?type=key&service_instance_guids={guid}"))
            .await;
        assert_eq!(keys["pagination"]["total_results"], 1, "{keys}");
        let key = keys["resources"][0].clone();
        assert_eq!(key["name"], "k1");
        assert_eq!(key["last_operation"]["state"], "succeeded");
        let (_, usage) = alice.get(&format!("/v3/spaces/{space_a}/usage_summary")).await;
        assert_eq!(usage["usage_summary"]["service_keys"], 1, "{usage}");
        assert_eq!(usage["usage_summary"]["service_instances"], 1, "{usage}");
        let (_, details) = alice
            .get(&format!(
                "/v3/service_credential_bindings/{}/details",
                key["guid"].as_str().expect("key")
            ))
            .await;
        assert!(
            details["credentials"]["uri"]
                .as_str()
                .expect("uri")
                .contains(key["guid"].as_str().expect("key")),
            "{details}"
        );
        let (st, _) = alice
            .post(
                "/v3/service_credential_bindings",
                json!({"type": "key", "name": "k1",
            "relationships": {"service_instance": {"data": {"guid": guid}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(broker_state(&broker).await["bindings"].as_object().expect("bindings").len(), 2);

        // Updated: parameters through the broker (and read back from it), the name at once.
        let j = job(
            &alice,
            reqwest::Method::PATCH,
            &format!("/v3/service_instances/{guid}"),
            Some(json!({"parameters": {"size": 2}})),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, params) = alice.get(&format!("/v3/service_instances/{guid}/parameters")).await;
        assert_eq!(params, json!({"size": 2}));
        let (st, si) =
            alice.patch(&format!("/v3/service_instances/{guid}"), json!({"name": "db2"})).await;
        assert_eq!(st, StatusCode::OK, "{si}");
        assert_eq!(
            (si["name"].as_str(), si["last_operation"]["type"].as_str()),
            (Some("db2"), Some("update"))
        );

        // Unbound, key deleted, deprovisioned: nothing left at the broker.
        let (_, bindings) =
            alice.get(&format!("/v3/service_credential_bindings?type=app&app_guids={app}")).await;
        let b = bindings["resources"][0]["guid"].as_str().expect("binding").to_owned();
        let j = job(
            &alice,
            reqwest::Method::DELETE,
            &format!("/v3/service_credential_bindings/{b}"),
            None,
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        assert_eq!(
            alice.get(&format!("/v3/apps/{app}/env")).await.1["system_env_json"]["VCAP_SERVICES"],
            json!({})
        );
        let j = job(
            &alice,
            reqwest::Method::DELETE,
            &format!("/v3/service_credential_bindings/{}", key["guid"].as_str().expect("key")),
            None,
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let j = job(
            &admin,
            reqwest::Method::DELETE,
            &format!(
                "/v3/service_brokers/{}",
                brokers["resources"][0]["guid"].as_str().expect("broker")
            ),
            None,
        )
        .await;
        assert_eq!(j["state"], "FAILED", "{j}");
        assert!(
            detail(&json!({"errors": j["errors"]})).contains("associated service instances"),
            "{j}"
        );
        let j =
            job(&alice, reqwest::Method::DELETE, &format!("/v3/service_instances/{guid}"), None)
                .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        assert_eq!(
            alice.get(&format!("/v3/service_instances/{guid}")).await.0,
            StatusCode::NOT_FOUND
        );
        let state = broker_state(&broker).await;
        assert_eq!(state["instances"], json!({}), "{state}");
        assert_eq!(state["bindings"], json!({}), "{state}");

        // Each failure plan: a failed last operation in the broker's or the platform's words,
        // and no orphan at the broker.
        for (name, want) in [
            ("fail-500", "could not be reached"),
            ("slow", "did not answer"),
            ("bad-json", "invalid response"),
            ("concurrency", "ConcurrencyError"),
            ("async-fails", "Out of capacity"),
        ] {
            let j = job(
                &alice,
                reqwest::Method::POST,
                "/v3/service_instances",
                Some(managed(name, &space_a, &plan[name])),
            )
            .await;
            assert_eq!(j["state"], "FAILED", "{name}: {j}");
            assert!(detail(&json!({"errors": j["errors"]})).contains(want), "{name}: {j}");
            let (_, list) = alice.get(&format!("/v3/service_instances?names={name}")).await;
            let si = &list["resources"][0];
            assert_eq!(si["last_operation"]["type"], "create", "{name}: {si}");
            assert_eq!(si["last_operation"]["state"], "failed", "{name}: {si}");
            assert!(
                si["last_operation"]["description"].as_str().expect("description").contains(want),
                "{name}: {si}"
            );
            let state = broker_state(&broker).await;
            assert_eq!(state["instances"], json!({}), "{name}: orphan at the broker: {state}");
            // A failed instance can be deleted (the broker no longer has it).
            let g = si["guid"].as_str().expect("guid").to_owned();
            let j =
                job(&alice, reqwest::Method::DELETE, &format!("/v3/service_instances/{g}"), None)
                    .await;
            assert_eq!(j["state"], "COMPLETE", "{name}: {j}");
        }

        // A broker with no instances left goes.
        let j = job(
            &admin,
            reqwest::Method::DELETE,
            &format!(
                "/v3/service_brokers/{}",
                brokers["resources"][0]["guid"].as_str().expect("broker")
            ),
            None,
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        assert_eq!(admin.get("/v3/service_plans").await.1["pagination"]["total_results"], 0);
        p.stop().await;
    }
}

#[tokio::test]
async fn an_operation_left_in_progress_is_taken_up_after_a_restart() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let broker = testkit::broker::start(USER, PASSWORD).await;
        // No drain: stopping cuts the provision's job off while the broker is still working.
        let p = harness::start(&db, |c| c.drain_secs = 0).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&admin, "restarts").await;
        let reg = json!({"name": "tb", "url": broker, "authentication": {"type": "basic",
            "credentials": {"username": USER, "password": PASSWORD}}});
        let j = job(&admin, reqwest::Method::POST, "/v3/service_brokers", Some(reg)).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let plan = plan_guid(&admin, "async").await;
        let (st, _) = admin
            .patch(&format!("/v3/service_plans/{plan}/visibility"), json!({"type": "public"}))
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = admin.post("/v3/service_instances", managed("db", &space, &plan)).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let (_, list) = admin.get("/v3/service_instances?names=db").await;
        let guid = list["resources"][0]["guid"].as_str().expect("guid").to_owned();
        p.stop().await;

        // Taken over once it has been left for `job_stale_ms`.
        let p = harness::start(&db, |c| {
            c.job_heartbeat_ms = 100;
            c.job_stale_ms = 1_000;
        })
        .await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, si) = admin.get(&format!("/v3/service_instances/{guid}")).await;
        assert_eq!(si["last_operation"]["state"], "in progress", "{si}");
        let si = testkit::eventually(
            "provision taken up",
            std::time::Duration::from_secs(20),
            || async {
                let (_, si) = admin.get(&format!("/v3/service_instances/{guid}")).await;
                (si["last_operation"]["state"] != "in progress").then_some(si)
            },
        )
        .await
        .expect("settled");
        assert_eq!(si["last_operation"]["state"], "succeeded", "{si}");
        assert!(broker_state(&broker).await["instances"].get(&guid).is_some());
        p.stop().await;
    }
}

#[tokio::test]
async fn space_scoped_brokers_belong_to_their_space() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let broker = testkit::broker::start(USER, PASSWORD).await;
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "scoped").await;
        let (st, other) = admin
            .post("/v3/spaces", json!({"name": "other", "relationships": {"organization": {"data": {"guid": org}}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let other = other["guid"].as_str().expect("space").to_owned();
        create_user(&admin, "dana").await;
        create_user(&admin, "erin").await;
        assert_eq!(role(&admin, "organization_user", "dana", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "dana", ("space", &space)).await.0, 201);
        assert_eq!(role(&admin, "organization_user", "erin", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "erin", ("space", &other)).await.0, 201);
        let dana = Client::new(&p.url, &harness::password_token(&p.url, "dana", "dana-pw").await);
        let erin = Client::new(&p.url, &harness::password_token(&p.url, "erin", "erin-pw").await);

        let reg = |space: &str| {
            json!({"name": "mine", "url": broker, "authentication": {"type": "basic",
                   "credentials": {"username": USER, "password": PASSWORD}},
                   "relationships": {"space": {"data": {"guid": space}}}})
        };
        let (st, _) = erin.post("/v3/service_brokers", reg(&space)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "erin cannot see that space");
        let j = job(&dana, reqwest::Method::POST, "/v3/service_brokers", Some(reg(&space))).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, brokers) = dana.get("/v3/service_brokers").await;
        assert_eq!(
            brokers["resources"][0]["relationships"]["space"]["data"]["guid"],
            space.as_str()
        );
        assert_eq!(erin.get("/v3/service_brokers").await.1["pagination"]["total_results"], 0);

        // Its plans are seen and used in its space only, and their visibility cannot change.
        let (_, plans) = dana.get("/v3/service_plans?names=sync").await;
        let plan = plans["resources"][0].clone();
        assert_eq!(plan["visibility_type"], "space", "{plans}");
        let plan = plan["guid"].as_str().expect("plan").to_owned();
        assert_eq!(erin.get("/v3/service_plans").await.1["pagination"]["total_results"], 0);
        let (st, _) = erin.post("/v3/service_instances", managed("x", &other, &plan)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let (st, e) = admin.post("/v3/service_instances", managed("x", &other, &plan)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "not even an admin, elsewhere: {e}");
        let (st, e) = admin
            .patch(&format!("/v3/service_plans/{plan}/visibility"), json!({"type": "public"}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let j = job(
            &dana,
            reqwest::Method::POST,
            "/v3/service_instances",
            Some(managed("db", &space, &plan)),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");

        let (_, list) = dana.get("/v3/service_instances?names=db").await;
        let guid = list["resources"][0]["guid"].as_str().expect("guid").to_owned();

        // A manifest's `services:` binds it through the broker, with the binding's parameters.
        let manifest = "applications:\n- name: web\n  services:\n  - name: db\n    binding_name: main\n    parameters: {role: reader}\n";
        let (st, loc, _) =
            dana.post_yaml(&format!("/v3/spaces/{space}/actions/apply_manifest"), manifest).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let j = dana.wait_job(&loc.expect("location")).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, apps) = dana.get(&format!("/v3/apps?names=web&space_guids={space}")).await;
        let app = apps["resources"][0]["guid"].as_str().expect("app").to_owned();
        let (_, env) = dana.get(&format!("/v3/apps/{app}/env")).await;
        let vcap = &env["system_env_json"]["VCAP_SERVICES"]["test-db"][0];
        assert_eq!(
            (vcap["name"].as_str(), vcap["plan"].as_str()),
            (Some("main"), Some("sync")),
            "{env}"
        );
        let bindings = broker_state(&broker).await["bindings"].clone();
        let bound =
            bindings.as_object().expect("bindings").values().next().expect("one binding").clone();
        assert_eq!(bound["parameters"], json!({"role": "reader"}), "{bindings}");
        let (_, bs) = dana.get(&format!("/v3/service_credential_bindings?app_guids={app}")).await;
        let bguid = bs["resources"][0]["guid"].as_str().expect("binding").to_owned();
        let (st, params) =
            dana.get(&format!("/v3/service_credential_bindings/{bguid}/parameters")).await;
        assert_eq!((st, params), (StatusCode::OK, json!({"role": "reader"})));
        // Applied again: already bound, nothing more at the broker.
        let (_, loc, _) =
            dana.post_yaml(&format!("/v3/spaces/{space}/actions/apply_manifest"), manifest).await;
        assert_eq!(dana.wait_job(&loc.expect("location")).await["state"], "COMPLETE");
        assert_eq!(broker_state(&broker).await["bindings"].as_object().expect("bindings").len(), 1);
        let bad = "applications:\n- name: web\n  services: [nope]\n";
        let (_, loc, _) =
            dana.post_yaml(&format!("/v3/spaces/{space}/actions/apply_manifest"), bad).await;
        let j = dana.wait_job(&loc.expect("location")).await;
        assert_eq!(j["state"], "FAILED", "{j}");
        assert!(
            detail(&json!({"errors": j["errors"]})).contains("Service instance 'nope' not found"),
            "{j}"
        );

        // Purged: the platform forgets it, the broker still has it.
        let (st, _) = dana
            .send(
                reqwest::Method::DELETE,
                &format!("/v3/service_instances/{guid}?purge=true"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            dana.get(&format!("/v3/service_instances/{guid}")).await.0,
            StatusCode::NOT_FOUND
        );
        assert!(broker_state(&broker).await["instances"].get(&guid).is_some());

        // Deleting an app unbinds it at the broker; deleting a space deprovisions its instances.
        let j = job(
            &dana,
            reqwest::Method::POST,
            "/v3/service_instances",
            Some(managed("db3", &space, &plan)),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, list) = dana.get("/v3/service_instances?names=db3").await;
        let db3 = list["resources"][0]["guid"].as_str().expect("guid").to_owned();
        let j = job(&dana, reqwest::Method::POST, "/v3/service_credential_bindings", Some(json!({"type": "app",
            "relationships": {"service_instance": {"data": {"guid": db3}}, "app": {"data": {"guid": app}}}}))).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let state = broker_state(&broker).await;
        assert!(
            state["bindings"]
                .as_object()
                .expect("bindings")
                .values()
                .any(|b| b["instance_id"] == db3.as_str()),
            "{state}"
        );
        let j = job(&dana, reqwest::Method::DELETE, &format!("/v3/apps/{app}"), None).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let state = broker_state(&broker).await;
        assert!(
            !state["bindings"]
                .as_object()
                .expect("bindings")
                .values()
                .any(|b| b["instance_id"] == db3.as_str()),
            "{state}"
        );
        let j = job(&admin, reqwest::Method::DELETE, &format!("/v3/spaces/{space}"), None).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let state = broker_state(&broker).await;
        assert!(state["instances"].get(&db3).is_none(), "{state}");
        assert!(state["instances"].get(&guid).is_some(), "the purged one is the broker's affair");

        let b = brokers["resources"][0]["guid"].as_str().expect("broker").to_owned();
        let j =
            job(&admin, reqwest::Method::DELETE, &format!("/v3/service_brokers/{b}"), None).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        p.stop().await;
    }
}

#[tokio::test]
async fn shared_instances_are_seen_and_bound_in_the_other_space() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let broker = testkit::broker::start(USER, PASSWORD).await;
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, home) = crate::push::org_and_space(&admin, "sharing").await;
        let (_, away) = admin
            .post(
                "/v3/spaces",
                json!({"name": "away", "relationships": {"organization": {"data": {"guid": org}}}}),
            )
            .await;
        let away = away["guid"].as_str().expect("space").to_owned();
        create_user(&admin, "carl").await;
        assert_eq!(role(&admin, "organization_user", "carl", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "carl", ("space", &away)).await.0, 201);
        let carl = Client::new(&p.url, &harness::password_token(&p.url, "carl", "carl-pw").await);
        let reg = json!({"name": "tb", "url": broker, "authentication": {"type": "basic",
            "credentials": {"username": USER, "password": PASSWORD}}});
        let j = job(&admin, reqwest::Method::POST, "/v3/service_brokers", Some(reg)).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let plan = plan_guid(&admin, "sync").await;
        admin
            .patch(&format!("/v3/service_plans/{plan}/visibility"), json!({"type": "public"}))
            .await;
        let j = job(
            &admin,
            reqwest::Method::POST,
            "/v3/service_instances",
            Some(managed("db", &home, &plan)),
        )
        .await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, list) = admin.get("/v3/service_instances?names=db").await;
        let guid = list["resources"][0]["guid"].as_str().expect("guid").to_owned();
        let (_, ups) = admin
            .post(
                "/v3/service_instances",
                json!({"type": "user-provided", "name": "ups",
            "relationships": {"space": {"data": {"guid": home}}}}),
            )
            .await;
        let ups = ups["guid"].as_str().expect("ups").to_owned();
        let path = format!("/v3/service_instances/{guid}/relationships/shared_spaces");

        assert_eq!(
            carl.get(&format!("/v3/service_instances/{guid}")).await.0,
            StatusCode::NOT_FOUND
        );
        // Sharing is off until an admin turns service_instance_sharing on, as in CC.
        let (st, e) = admin.post(&path, json!({"data": [{"guid": away}]})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["errors"][0]["detail"], "Feature Disabled: service_instance_sharing");
        let (st, f) = admin
            .patch("/v3/feature_flags/service_instance_sharing", json!({"enabled": true}))
            .await;
        assert_eq!(st, StatusCode::OK, "{f}");
        for (who, body, want) in [
            (&admin, json!({"data": [{"guid": home}]}), "where they were created"),
            (&admin, json!({"data": [{"guid": "nope"}]}), "Ensure the spaces exist"),
            (&admin, json!({"data": []}), "Data must be"),
        ] {
            let (st, e) = who.post(&path, body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
            assert!(detail(&e).contains(want), "{e}");
        }
        let (st, e) = admin
            .post(
                &format!("/v3/service_instances/{ups}/relationships/shared_spaces"),
                json!({"data": [{"guid": away}]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(detail(&e).contains("User-provided services cannot be shared"), "{e}");

        let (st, shared) = admin.post(&path, json!({"data": [{"guid": away}]})).await;
        assert_eq!(st, StatusCode::OK, "{shared}");
        assert_eq!(shared["data"], json!([{"guid": away}]));
        // Seen from the other space, not changed from it.
        let (st, si) = carl.get(&format!("/v3/service_instances/{guid}")).await;
        assert_eq!(st, StatusCode::OK, "{si}");
        let (_, list) = carl.get(&format!("/v3/service_instances?space_guids={away}")).await;
        assert_eq!(list["pagination"]["total_results"], 1, "{list}");
        assert_eq!(carl.get("/v3/service_instances").await.1["pagination"]["total_results"], 1);
        let (st, _) =
            carl.patch(&format!("/v3/service_instances/{guid}"), json!({"name": "mine"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert_eq!(carl.get(&path).await.1["data"], json!([{"guid": away}]));

        // Bound by an app of the other space.
        let (_, app) = carl
            .post(
                "/v3/apps",
                json!({"name": "away-app", "relationships": {"space": {"data": {"guid": away}}}}),
            )
            .await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let j = job(&carl, reqwest::Method::POST, "/v3/service_credential_bindings", Some(json!({"type": "app",
            "relationships": {"service_instance": {"data": {"guid": guid}}, "app": {"data": {"guid": app}}}}))).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, env) = carl.get(&format!("/v3/apps/{app}/env")).await;
        assert_eq!(
            env["system_env_json"]["VCAP_SERVICES"]["test-db"][0]["instance_name"], "db",
            "{env}"
        );
        let (_, bs) = carl.get(&format!("/v3/service_credential_bindings?app_guids={app}")).await;
        assert_eq!(bs["pagination"]["total_results"], 1, "{bs}");
        assert_eq!(broker_state(&broker).await["bindings"].as_object().expect("bindings").len(), 1);

        // Unshared: the other space's binding goes, at the broker too; the instance is gone from view.
        let (st, e) = admin.send(reqwest::Method::DELETE, &format!("{path}/{away}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
        assert_eq!(broker_state(&broker).await["bindings"], json!({}));
        assert_eq!(
            carl.get(&format!("/v3/service_instances/{guid}")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            carl.get(&format!("/v3/apps/{app}/env")).await.1["system_env_json"]["VCAP_SERVICES"],
            json!({})
        );
        let (st, _) = admin.send(reqwest::Method::DELETE, &format!("{path}/{away}"), None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        p.stop().await;
    }
}

async fn set_catalog(broker: &str, body: Value) {
    let res = reqwest::Client::new()
        .post(format!("{broker}/test/catalog"))
        .json(&body)
        .send()
        .await
        .expect("catalog");
    assert!(res.status().is_success());
}

async fn instance_guid(c: &Client, name: &str) -> String {
    let (_, list) = c.get(&format!("/v3/service_instances?names={name}")).await;
    list["resources"][0]["guid"].as_str().unwrap_or_else(|| panic!("{name}: {list}")).to_owned()
}

/// A broker's new plan version shows as an available upgrade, which runs through the broker
/// (sync and async) and is refused for any other version; plans the catalog drops stay for
/// their instances but take no new ones; an offering whose broker is gone is purged with its
/// instances without asking the broker.
#[tokio::test]
async fn plan_upgrades_dropped_plans_and_purged_offerings() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let broker = testkit::broker::start(USER, PASSWORD).await;
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "upgrades").await;
        create_user(&admin, "carol").await;
        assert_eq!(role(&admin, "organization_user", "carol", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "carol", ("space", &space)).await.0, 201);
        let carol =
            Client::new(&p.url, &harness::password_token(&p.url, "carol", "carol-pw").await);
        let reg = json!({"name": "tb", "url": broker, "authentication": {"type": "basic",
            "credentials": {"username": USER, "password": PASSWORD}}});
        let j = job(&admin, reqwest::Method::POST, "/v3/service_brokers", Some(reg)).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        let (_, b) = admin.get("/v3/service_brokers?names=tb").await;
        let broker_guid = b["resources"][0]["guid"].as_str().expect("guid").to_owned();
        let broker_path = format!("/v3/service_brokers/{broker_guid}");
        let resync =
            || job(&admin, reqwest::Method::PATCH, &broker_path, Some(json!({"name": "tb"})));
        let (sync, asynchronous) =
            (plan_guid(&admin, "sync").await, plan_guid(&admin, "async").await);
        for plan in [&sync, &asynchronous] {
            let (st, _) = admin
                .patch(&format!("/v3/service_plans/{plan}/visibility"), json!({"type": "public"}))
                .await;
            assert_eq!(st, StatusCode::OK);
        }

        // The plan's version, costs and price as the catalog gives them.
        let (_, plan) = carol.get(&format!("/v3/service_plans/{sync}")).await;
        assert_eq!(plan["maintenance_info"]["version"], "1.0.0", "{plan}");
        assert_eq!(plan["maintenance_info"]["description"], "Test DB engine 1.0.0", "{plan}");
        assert_eq!(plan["free"], false, "{plan}");
        assert_eq!(plan["available"], true, "{plan}");
        let costs = plan["costs"].as_array().expect("costs");
        assert!(
            costs.contains(&json!({"amount": 9.5, "currency": "USD", "unit": "MONTHLY"})),
            "{plan}"
        );
        assert_eq!(costs.len(), 2, "{plan}");

        // Instances are made at the plan's version, with no upgrade to offer.
        for (name, plan) in [("db-sync", &sync), ("db-async", &asynchronous)] {
            let (st, r) = carol.post("/v3/service_instances", managed(name, &space, plan)).await;
            assert_eq!(st, StatusCode::ACCEPTED, "{r}");
        }
        let (db_sync, db_async) =
            (instance_guid(&carol, "db-sync").await, instance_guid(&carol, "db-async").await);
        for g in [&db_sync, &db_async] {
            let si =
                testkit::eventually("provisioned", std::time::Duration::from_secs(20), || async {
                    let (_, si) = carol.get(&format!("/v3/service_instances/{g}")).await;
                    (si["last_operation"]["state"] == "succeeded").then_some(si)
                })
                .await
                .expect("provisioned");
            assert_eq!(si["maintenance_info"]["version"], "1.0.0", "{si}");
            assert_eq!(si["upgrade_available"], false, "{si}");
        }
        assert_eq!(broker_state(&broker).await["instances"][&db_sync]["version"], "1.0.0");

        // The broker moves on: the plans show the new version and the instances an upgrade.
        set_catalog(&broker, json!({"version": "2.0.0"})).await;
        let j = resync().await;
        assert_eq!(j["state"], "COMPLETE", "{engine:?}: {j}");
        let (_, plan) = carol.get(&format!("/v3/service_plans/{sync}")).await;
        assert_eq!(plan["maintenance_info"]["version"], "2.0.0", "{plan}");
        let (_, list) = carol.get(&format!("/v3/service_instances?space_guids={space}")).await;
        assert!(
            list["resources"]
                .as_array()
                .expect("list")
                .iter()
                .all(|si| si["upgrade_available"] == true),
            "{list}"
        );

        // Another version, a change of plan alongside, a bad shape: refused, nothing sent.
        let sent_before = broker_state(&broker).await["requests"].as_array().expect("reqs").len();
        for (body, want) in [
            (
                json!({"maintenance_info": {"version": "1.5.0"}}),
                "maintenance_info.version requested is invalid",
            ),
            (
                json!({"maintenance_info": {"version": "2.0.0"},
                       "relationships": {"service_plan": {"data": {"guid": asynchronous}}}}),
                "maintenance_info should not be changed when switching to different plan.",
            ),
            (json!({"maintenance_info": "2.0.0"}), "Maintenance info version must be a string"),
        ] {
            let (st, e) = carol.patch(&format!("/v3/service_instances/{db_sync}"), body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
            assert!(detail(&e).contains(want), "{e}");
        }
        assert_eq!(
            broker_state(&broker).await["requests"].as_array().expect("reqs").len(),
            sent_before
        );

        // The upgrade goes through the broker, synchronously and asynchronously.
        for g in [&db_sync, &db_async] {
            let j = job(
                &carol,
                reqwest::Method::PATCH,
                &format!("/v3/service_instances/{g}"),
                Some(json!({"maintenance_info": {"version": "2.0.0"}})),
            )
            .await;
            assert_eq!(j["state"], "COMPLETE", "{j}");
            let (_, si) = carol.get(&format!("/v3/service_instances/{g}")).await;
            assert_eq!(si["maintenance_info"]["version"], "2.0.0", "{si}");
            assert_eq!(si["upgrade_available"], false, "{si}");
            assert_eq!(si["last_operation"]["type"], "update", "{si}");
            assert_eq!(si["last_operation"]["state"], "succeeded", "{si}");
            assert_eq!(broker_state(&broker).await["instances"][g]["version"], "2.0.0");
        }
        // Asking again for the version it has is no change: no broker call.
        let sent_before = broker_state(&broker).await["requests"].as_array().expect("reqs").len();
        let (st, si) = carol
            .patch(
                &format!("/v3/service_instances/{db_sync}"),
                json!({"maintenance_info": {"version": "2.0.0"}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{si}");
        assert_eq!(
            broker_state(&broker).await["requests"].as_array().expect("reqs").len(),
            sent_before
        );

        // The catalog drops `sync` (in use) and `slow` (unused): `slow` goes, `sync` stays for
        // its instance, unavailable for new ones.
        set_catalog(&broker, json!({"drop": ["sync", "slow"]})).await;
        let j = resync().await;
        assert_eq!(j["state"], "COMPLETE", "{engine:?}: {j}");
        let (_, gone) = admin.get("/v3/service_plans?names=slow").await;
        assert_eq!(gone["pagination"]["total_results"], 0, "{gone}");
        let (_, plan) = carol.get(&format!("/v3/service_plans/{sync}")).await;
        assert_eq!(plan["available"], false, "{plan}");
        let (_, off) = carol.get("/v3/service_plans?available=false").await;
        let names: Vec<&str> = off["resources"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["sync"], "{off}");
        let (st, e) = carol.post("/v3/service_instances", managed("db-new", &space, &sync)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(detail(&e).contains("has been removed from the service broker's catalog"), "{e}");
        let (st, e) = carol
            .patch(&format!("/v3/service_instances/{db_sync}"), json!({"parameters": {"a": 1}}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(detail(&e).contains("inaccessible plan"), "{e}");
        let (st, e) =
            admin.send(reqwest::Method::DELETE, &format!("/v3/service_plans/{sync}"), None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(detail(&e).contains("service_instances associations"), "{e}");

        // Purging the offering: not for a space developer of a global broker's offering, not
        // without purge while it has plans; with purge, everything but the broker goes and
        // the broker is not asked.
        let (_, offering) = admin.get("/v3/service_offerings?names=test-db").await;
        let offering = offering["resources"][0]["guid"].as_str().expect("offering").to_owned();
        let path = format!("/v3/service_offerings/{offering}");
        let (st, _) =
            carol.send(reqwest::Method::DELETE, &format!("{path}?purge=true"), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, e) = admin.send(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(detail(&e).contains("service_plans associations"), "{e}");
        let sent_before = broker_state(&broker).await["requests"].as_array().expect("reqs").len();
        let (st, e) =
            admin.send(reqwest::Method::DELETE, &format!("{path}?purge=true"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
        let state = broker_state(&broker).await;
        assert_eq!(state["requests"].as_array().expect("reqs").len(), sent_before);
        assert!(state["instances"].get(&db_sync).is_some(), "the broker was not asked");
        for g in [&db_sync, &db_async] {
            assert_eq!(
                admin.get(&format!("/v3/service_instances/{g}")).await.0,
                StatusCode::NOT_FOUND
            );
        }
        assert_eq!(admin.get(&path).await.0, StatusCode::NOT_FOUND);
        assert_eq!(admin.get(&format!("/v3/service_plans/{sync}")).await.0, StatusCode::NOT_FOUND);
        let (_, ev) = admin.get("/v3/audit_events?types=audit.service_instance.purge").await;
        assert_eq!(ev["pagination"]["total_results"], 2, "{ev}");
        let (_, ev) = admin.get("/v3/audit_events?types=audit.service.purge").await;
        assert_eq!(ev["pagination"]["total_results"], 1, "{ev}");
        // With nothing left, the broker can go.
        let j = admin.delete_job(&format!("/v3/service_brokers/{broker_guid}")).await;
        assert_eq!(j["state"], "COMPLETE", "{j}");
        p.stop().await;
    }
}
