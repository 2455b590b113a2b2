//! Route services (`/v3/service_route_bindings`), on both engines: every endpoint and CC's
//! errors, the route service URL in the desired LRP the scheduler gets (after a bind, after a
//! change of the instance's URL, gone after an unbind), another tenant's ids, and no binding
//! left behind by a deleted route, instance or space.

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client, Platform};
use crate::tenancy::{create_user, role};

const MANIFEST: &str = "applications:\n- name: guarded\n  memory: 64M\n  routes:\n  - route: guarded.apps.localhost\n  - route: open.apps.localhost\n";
const RS_URL: &str = "https://rs.example.com/filter";

fn detail(v: &Value) -> String {
    v["errors"][0]["detail"].as_str().unwrap_or_default().to_owned()
}

fn guid(v: &Value) -> String {
    v["guid"].as_str().unwrap_or_else(|| panic!("no guid in {v}")).to_owned()
}

/// A started app with a droplet whose web process has `guarded.` and `open.apps.localhost`.
pub(crate) async fn started_app(c: &Client, space: &str) -> String {
    let apply = format!("/v3/spaces/{space}/actions/apply_manifest");
    let (st, loc, e) = c.post_yaml(&apply, MANIFEST).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    assert_eq!(c.wait_job(&loc.expect("Location")).await["state"], "COMPLETE");
    let (_, apps) = c.get(&format!("/v3/apps?names=guarded&space_guids={space}")).await;
    let app = guid(&apps["resources"][0]);
    let (_, droplet) = crate::push::push_bits(c, &app, &[("app.py", b"print('hi')\n")]).await;
    let (st, e) = c
        .patch(
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            json!({"data": {"guid": droplet}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let (st, e) = c.post(&format!("/v3/apps/{app}/actions/restart"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    app
}

/// The route `uri` of the app's desired LRPs as the fake scheduler holds them.
pub(crate) fn lrp_route(p: &Platform, app: &str, uri: &str) -> wire::lrp::Route {
    let d = p.desired.lock().expect("lock");
    d.values()
        .filter(|l| l.log_guid == app)
        .flat_map(|l| l.routes.iter())
        .find(|r| r.uri == uri)
        .cloned()
        .unwrap_or_else(|| panic!("no desired route {uri} for {app}"))
}

pub(crate) async fn route_guid(c: &Client, host: &str) -> String {
    let (_, routes) = c.get(&format!("/v3/routes?hosts={host}")).await;
    guid(&routes["resources"][0])
}

pub(crate) async fn instance(c: &Client, space: &str, name: &str, url: Option<&str>) -> String {
    let mut b = json!({"type": "user-provided", "name": name, "relationships": {"space": {"data": {"guid": space}}}});
    if let Some(u) = url {
        b["route_service_url"] = json!(u);
    }
    let (st, si) = c.post("/v3/service_instances", b).await;
    assert_eq!(st, StatusCode::CREATED, "{si}");
    guid(&si)
}

pub(crate) fn bind_body(route: &str, instance: &str) -> Value {
    json!({"relationships": {"route": {"data": {"guid": route}}, "service_instance": {"data": {"guid": instance}}}})
}

async fn total(c: &Client, path: &str) -> i64 {
    let (st, v) = c.get(path).await;
    assert_eq!(st, StatusCode::OK, "{path}: {v}");
    v["pagination"]["total_results"].as_i64().expect("total")
}

async fn delete(c: &Client, path: &str) -> (StatusCode, Value) {
    c.send(Method::DELETE, path, None).await
}

async fn event_types(c: &Client, target: &str) -> Vec<String> {
    let (_, events) = c.get(&format!("/v3/audit_events?target_guids={target}")).await;
    events["resources"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn route_services_bind_into_the_desired_routes_with_cc_errors() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&admin, "acme").await;
        let (other_org, other_space) = crate::push::org_and_space(&admin, "other").await;
        let app = started_app(&admin, &space).await;
        let guarded = route_guid(&admin, "guarded").await;
        let open = route_guid(&admin, "open").await;
        assert_eq!(lrp_route(&p, &app, "guarded.apps.localhost").route_service_url, None);
        let rs = instance(&admin, &space, "rs", Some(RS_URL)).await;
        let plain = instance(&admin, &space, "plain", None).await;
        let elsewhere = instance(&admin, &other_space, "rs", Some(RS_URL)).await;

        // CC's refusals; nothing is bound by any of them.
        let res = admin
            .http
            .post(format!("{}/v3/service_route_bindings", p.url))
            .bearer_auth(&p.admin_token)
            .header("content-type", "application/json")
            .body("{\"relationships\": ")
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 400);
        let e: Value = res.json().await.expect("json");
        assert_eq!(e["errors"][0]["title"], "CF-MessageParseError", "{e}");
        let (st, d) =
            admin.post("/v3/domains", json!({"name": "apps.internal", "internal": true})).await;
        assert_eq!(st, StatusCode::CREATED, "{d}");
        let (st, internal) = admin.post("/v3/routes", json!({"host": "svc", "relationships": {"space": {"data": {"guid": space}}, "domain": {"data": {"guid": guid(&d)}}}})).await;
        assert_eq!(st, StatusCode::CREATED, "{internal}");
        let internal = guid(&internal);
        let mut with_params = bind_body(&guarded, &rs);
        with_params["parameters"] = json!({});
        let mut bad_label = bind_body(&guarded, &rs);
        bad_label["metadata"] = json!({"labels": {"-bad": "x"}});
        for (body, want) in [
            (
                json!({"foo": 1}),
                "Unknown field(s): 'foo', Relationships 'relationships' is not an object",
            ),
            (bind_body(&guarded, "nope"), "The service instance could not be found: nope"),
            (bind_body("nope", &rs), "The route could not be found: nope"),
            (bind_body(&guarded, &plain), "This service instance does not support route binding"),
            (
                with_params,
                "Binding parameters are not supported for user-provided service instances",
            ),
            (bind_body(&internal, &rs), "Route services cannot be bound to internal routes"),
            (
                bind_body(&guarded, &elsewhere),
                "The service instance and the route are in different spaces",
            ),
            (bad_label, "Metadata labels key error: '-bad' is not a valid key"),
        ] {
            let (st, e) = admin.post("/v3/service_route_bindings", body.clone()).await;
            assert_eq!(
                (st, detail(&e)),
                (StatusCode::UNPROCESSABLE_ENTITY, want.to_owned()),
                "{body}"
            );
            assert_eq!(e["errors"][0]["code"], 10008, "{e}");
        }
        assert_eq!(total(&admin, "/v3/service_route_bindings").await, 0);

        // Bind: CC's shape, the route service URL on the desired route, and only there.
        let mut body = bind_body(&guarded, &rs);
        body["metadata"] = json!({"labels": {"tier": "edge"}});
        let (st, b) = admin.post("/v3/service_route_bindings", body).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let binding = guid(&b);
        assert_eq!(b["route_service_url"], RS_URL);
        assert_eq!(b["last_operation"]["type"], "create");
        assert_eq!(b["last_operation"]["state"], "succeeded");
        assert_eq!(b["relationships"]["route"]["data"]["guid"], guarded.as_str());
        assert_eq!(b["relationships"]["service_instance"]["data"]["guid"], rs.as_str());
        assert_eq!(b["metadata"]["labels"]["tier"], "edge");
        assert_eq!(
            b["links"]["self"]["href"],
            format!("{}/v3/service_route_bindings/{binding}", p.url)
        );
        assert_eq!(b["links"]["route"]["href"], format!("{}/v3/routes/{guarded}", p.url));
        assert_eq!(
            b["links"]["service_instance"]["href"],
            format!("{}/v3/service_instances/{rs}", p.url)
        );
        assert!(
            b["links"].get("parameters").is_none(),
            "CC links parameters of managed instances only: {b}"
        );
        assert_eq!(
            lrp_route(&p, &app, "guarded.apps.localhost").route_service_url.as_deref(),
            Some(RS_URL)
        );
        assert_eq!(lrp_route(&p, &app, "open.apps.localhost").route_service_url, None);
        let (_, env) = admin.get(&format!("/v3/apps/{app}/env")).await;
        assert_eq!(
            env["system_env_json"]["VCAP_SERVICES"],
            json!({}),
            "a route service is not an app binding"
        );

        // A route has one binding.
        let (st, e) = admin.post("/v3/service_route_bindings", bind_body(&guarded, &rs)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-ServiceInstanceAlreadyBoundToSameRoute");
        assert_eq!(e["errors"][0]["code"], 130008);
        assert_eq!(detail(&e), "The route and service instance are already bound.");
        let rs2 = instance(&admin, &space, "rs2", Some("https://rs2.example.com")).await;
        let (st, e) = admin.post("/v3/service_route_bindings", bind_body(&guarded, &rs2)).await;
        assert_eq!(
            (st, detail(&e)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "A route may only be bound to a single service instance".into()
            )
        );
        let (st, second) = admin.post("/v3/service_route_bindings", bind_body(&open, &rs2)).await;
        assert_eq!(st, StatusCode::CREATED, "{second}");
        let second = guid(&second);

        // Read: show, filters, paging, label selectors, includes.
        let (st, shown) = admin.get(&format!("/v3/service_route_bindings/{binding}")).await;
        assert_eq!((st, shown["guid"].as_str()), (StatusCode::OK, Some(binding.as_str())));
        for (q, n) in [
            (String::new(), 2),
            (format!("route_guids={guarded}"), 1),
            (format!("service_instance_guids={rs2}"), 1),
            (format!("service_instance_guids={rs},{rs2}"), 2),
            ("service_instance_names=rs".into(), 1),
            (format!("guids={second}"), 1),
            ("label_selector=tier%3Dedge".into(), 1),
            ("label_selector=!tier".into(), 1),
            ("order_by=-created_at".into(), 2),
        ] {
            assert_eq!(total(&admin, &format!("/v3/service_route_bindings?{q}")).await, n, "{q}");
        }
        let (_, page) =
            admin.get("/v3/service_route_bindings?per_page=1&service_instance_names=rs,rs2").await;
        assert_eq!(page["pagination"]["total_pages"], 2);
        let next = page["pagination"]["next"]["href"].as_str().expect("next");
        assert!(next.contains("service_instance_names=rs%2Crs2"), "{next}");
        assert_eq!(page["resources"][0]["guid"], binding.as_str(), "oldest first");
        let (_, inc) = admin
            .get(&format!(
                "/v3/service_route_bindings?route_guids={guarded}&include=route,service_instance"
            ))
            .await;
        assert_eq!(inc["included"]["routes"][0]["url"], "guarded.apps.localhost", "{inc}");
        assert_eq!(inc["included"]["service_instances"][0]["name"], "rs", "{inc}");
        for bad in ["colour=red", "include=app"] {
            let (st, e) = admin.get(&format!("/v3/service_route_bindings?{bad}")).await;
            assert_eq!(
                (st, e["errors"][0]["title"].as_str()),
                (StatusCode::BAD_REQUEST, Some("CF-BadQueryParameter")),
                "{bad}"
            );
        }

        // Metadata, parameters.
        let path = format!("/v3/service_route_bindings/{binding}");
        let (st, v) = admin.patch(&path, json!({"metadata": {"labels": {"tier": null, "team": "a"}, "annotations": {"note": "x"}}})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["metadata"], json!({"labels": {"team": "a"}, "annotations": {"note": "x"}}));
        let (st, e) =
            admin.patch(&path, json!({"route_service_url": "https://x.example.com"})).await;
        assert_eq!(
            (st, detail(&e)),
            (StatusCode::UNPROCESSABLE_ENTITY, "Unknown field(s): 'route_service_url'".into())
        );
        let (st, e) = admin.get(&format!("{path}/parameters")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-BadRequest");
        assert_eq!(detail(&e), "Bad request: user provided service instances do not support fetching route bindings parameters.");

        // A new URL on the instance reaches the scheduler at once.
        let new_url = "https://rs.example.com/v2";
        let (st, v) = admin
            .patch(&format!("/v3/service_instances/{rs}"), json!({"route_service_url": new_url}))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            lrp_route(&p, &app, "guarded.apps.localhost").route_service_url.as_deref(),
            Some(new_url)
        );
        assert_eq!(admin.get(&path).await.1["route_service_url"], new_url);

        // Readers read; writes need a developer (create and delete: or a supporter).
        create_user(&admin, "auditor").await;
        let (_, orgs) = admin.get("/v3/organizations?names=acme").await;
        let org = guid(&orgs["resources"][0]);
        role(&admin, "organization_user", "auditor", ("organization", &org)).await;
        role(&admin, "space_auditor", "auditor", ("space", &space)).await;
        let auditor =
            Client::new(&p.url, &harness::password_token(&p.url, "auditor", "auditor-pw").await);
        assert_eq!(auditor.get(&path).await.0, StatusCode::OK);
        assert_eq!(total(&auditor, "/v3/service_route_bindings").await, 2);
        assert_eq!(auditor.get(&format!("{path}/parameters")).await.0, StatusCode::FORBIDDEN);
        assert_eq!(auditor.patch(&path, json!({"metadata": {}})).await.0, StatusCode::FORBIDDEN);
        assert_eq!(delete(&auditor, &path).await.0, StatusCode::FORBIDDEN);
        let (_, plain_route) = admin.post("/v3/routes", json!({"host": "plain", "relationships": {"space": {"data": {"guid": space}}, "domain": {"data": {"guid": apps_domain(&admin).await}}}})).await;
        let plain_route = guid(&plain_route);
        let (st, e) =
            auditor.post("/v3/service_route_bindings", bind_body(&plain_route, &rs)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        create_user(&admin, "supporter").await;
        role(&admin, "organization_user", "supporter", ("organization", &org)).await;
        role(&admin, "space_supporter", "supporter", ("space", &space)).await;
        let supporter = Client::new(
            &p.url,
            &harness::password_token(&p.url, "supporter", "supporter-pw").await,
        );
        let (st, third) =
            supporter.post("/v3/service_route_bindings", bind_body(&plain_route, &rs)).await;
        assert_eq!(st, StatusCode::CREATED, "{third}");
        assert_eq!(
            delete(&supporter, &format!("/v3/service_route_bindings/{}", guid(&third))).await.0,
            StatusCode::NO_CONTENT
        );

        // Another tenant: nothing to see or touch; its guids in a create are "not found".
        create_user(&admin, "mallory").await;
        role(&admin, "organization_user", "mallory", ("organization", &other_org)).await;
        role(&admin, "space_developer", "mallory", ("space", &other_space)).await;
        let mallory =
            Client::new(&p.url, &harness::password_token(&p.url, "mallory", "mallory-pw").await);
        for sub in ["", "/parameters"] {
            let (st, e) = mallory.get(&format!("{path}{sub}")).await;
            assert_eq!(
                (st, detail(&e)),
                (StatusCode::NOT_FOUND, "Service route binding not found".into()),
                "{sub}"
            );
        }
        assert_eq!(
            mallory.patch(&path, json!({"metadata": {"labels": {"x": "y"}}})).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(delete(&mallory, &path).await.0, StatusCode::NOT_FOUND);
        assert_eq!(total(&mallory, "/v3/service_route_bindings").await, 0);
        assert_eq!(
            total(&mallory, &format!("/v3/service_route_bindings?guids={binding}")).await,
            0
        );
        let (st, e) =
            mallory.post("/v3/service_route_bindings", bind_body(&plain_route, &rs)).await;
        assert_eq!(
            (st, detail(&e)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The service instance could not be found: {rs}")
            )
        );
        let (st, e) =
            mallory.post("/v3/service_route_bindings", bind_body(&plain_route, &elsewhere)).await;
        assert_eq!(
            (st, detail(&e)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The route could not be found: {plain_route}")
            )
        );
        assert_eq!(total(&admin, "/v3/service_route_bindings").await, 2, "nothing was touched");

        // Unbind: the route goes back to plain routing.
        let (st, _) = delete(&admin, &path).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(admin.get(&path).await.0, StatusCode::NOT_FOUND);
        assert_eq!(lrp_route(&p, &app, "guarded.apps.localhost").route_service_url, None);
        let kinds = event_types(&admin, &binding).await;
        for k in [
            "audit.service_route_binding.create",
            "audit.service_route_binding.update",
            "audit.service_route_binding.delete",
        ] {
            assert!(kinds.iter().any(|t| t == k), "{k} in {kinds:?}");
        }

        // Deleting the instance unbinds its routes (CC deletes them with it).
        assert_eq!(
            lrp_route(&p, &app, "open.apps.localhost").route_service_url.as_deref(),
            Some("https://rs2.example.com")
        );
        let (st, e) = delete(&admin, &format!("/v3/service_instances/{rs2}")).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
        assert_eq!(total(&admin, "/v3/service_route_bindings").await, 0);
        assert_eq!(lrp_route(&p, &app, "open.apps.localhost").route_service_url, None);
        assert!(event_types(&admin, &second)
            .await
            .contains(&"audit.service_route_binding.delete".to_owned()));

        // Deleting the route deletes its binding.
        let (st, b) = admin.post("/v3/service_route_bindings", bind_body(&guarded, &rs)).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(admin.delete_job(&format!("/v3/routes/{guarded}")).await["state"], "COMPLETE");
        assert_eq!(total(&admin, "/v3/service_route_bindings").await, 0);
        assert_eq!(
            admin.get(&format!("/v3/service_route_bindings/{}", guid(&b))).await.0,
            StatusCode::NOT_FOUND
        );
        assert!(p
            .desired
            .lock()
            .expect("lock")
            .values()
            .filter(|l| l.log_guid == app)
            .all(|l| l.routes.iter().all(|r| r.uri != "guarded.apps.localhost")));

        // Deleting a space with a bound route leaves nothing behind.
        let (st, b) = admin.post("/v3/service_route_bindings", bind_body(&plain_route, &rs)).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let job = admin.delete_job(&format!("/v3/spaces/{space}")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        assert_eq!(total(&admin, "/v3/service_route_bindings").await, 0);
        assert_eq!(total(&admin, &format!("/v3/service_instances?space_guids={space}")).await, 0);
        p.stop().await;
    }
}

async fn apps_domain(c: &Client) -> String {
    let (_, d) = c.get("/v3/domains?names=apps.localhost").await;
    guid(&d["resources"][0])
}

#[tokio::test]
async fn route_options_and_destination_protocols_change_the_desired_routes() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&admin, "acme").await;
        let app = started_app(&admin, &space).await;
        let open = route_guid(&admin, "open").await;
        let uri = "open.apps.localhost";
        assert_eq!(lrp_route(&p, &app, uri).loadbalancing, None);

        // CC's refusals, nothing changed by any of them.
        let path = format!("/v3/routes/{open}");
        for (body, why) in [
            (json!({"options": null}), "Options 'options' is not a valid object"),
            (json!({"options": {"gorgonzola": "gouda"}}), "Options Unknown field(s): 'gorgonzola'"),
            (
                json!({"options": {"loadbalancing": "cheesecake"}}),
                "Options Loadbalancing must be one of 'round-robin, least-connection' if present",
            ),
            (json!({"host": "other"}), "Unknown field(s): 'host'"),
        ] {
            let (st, e) = admin.patch(&path, body.clone()).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
            assert_eq!(e["errors"][0]["detail"], why, "{body}");
        }
        let (_, r) = admin.get(&path).await;
        assert_eq!(r["options"], json!({}), "{r}");

        // Set: shown on the route, in the app's desired routes, and audited.
        let (st, r) =
            admin.patch(&path, json!({"options": {"loadbalancing": "least-connection"}})).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["options"], json!({"loadbalancing": "least-connection"}), "{r}");
        assert_eq!(lrp_route(&p, &app, uri).loadbalancing.as_deref(), Some("least-connection"));
        assert!(event_types(&admin, &open).await.contains(&"audit.route.update".to_owned()));
        // The other route of the app keeps the default; `{}` changes nothing.
        assert_eq!(lrp_route(&p, &app, "guarded.apps.localhost").loadbalancing, None);
        let (st, r) = admin.patch(&path, json!({"options": {}})).await;
        assert_eq!(
            (st, &r["options"]["loadbalancing"]),
            (StatusCode::OK, &json!("least-connection"))
        );

        // `null` unsets it.
        let (st, r) = admin.patch(&path, json!({"options": {"loadbalancing": null}})).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["options"], json!({}), "{r}");
        assert_eq!(lrp_route(&p, &app, uri).loadbalancing, None);

        // A destination's protocol (`cf update-destination`).
        let (_, dests) = admin.get(&format!("{path}/destinations")).await;
        let dest = guid(&dests["destinations"][0]);
        let dpath = format!("{path}/destinations/{dest}");
        for (body, why) in [
            (json!({"protocol": "tcp"}), "Protocol must be 'http1' or 'http2'"),
            (json!({"port": 9000}), "Unknown field(s): 'port'"),
        ] {
            let (st, e) = admin.patch(&dpath, body.clone()).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
            assert_eq!(e["errors"][0]["detail"], why, "{body}");
        }
        let (st, e) =
            admin.patch(&format!("{path}/destinations/nope"), json!({"protocol": "http2"})).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
        let (st, d) = admin.patch(&dpath, json!({"protocol": "http2"})).await;
        assert_eq!(st, StatusCode::OK, "{d}");
        assert_eq!(
            (d["guid"].as_str(), d["protocol"].as_str()),
            (Some(dest.as_str()), Some("http2"))
        );
        assert_eq!(lrp_route(&p, &app, uri).protocol.as_deref(), Some("http2"));
        admin.patch(&dpath, json!({"protocol": "http1"})).await;
        assert_eq!(lrp_route(&p, &app, uri).protocol.as_deref(), Some("http1"));

        // Created with an option; a bad one refused at creation too.
        let d = apps_domain(&admin).await;
        let new = |lb: &str| json!({"host": "lc", "options": {"loadbalancing": lb}, "relationships": {"space": {"data": {"guid": space}}, "domain": {"data": {"guid": d}}}});
        let (st, e) = admin.post("/v3/routes", new("random")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, r) = admin.post("/v3/routes", new("least-connection")).await;
        assert_eq!(st, StatusCode::CREATED, "{r}");
        assert_eq!(r["options"], json!({"loadbalancing": "least-connection"}), "{r}");

        // Another tenant's route is not found; a space auditor may not change options.
        let (rival_org, rival_space) = crate::push::org_and_space(&admin, "rival").await;
        crate::tenancy::create_user(&admin, "eve").await;
        let (st, _) =
            crate::tenancy::role(&admin, "organization_user", "eve", ("organization", &rival_org))
                .await;
        assert_eq!(st, StatusCode::CREATED);
        crate::tenancy::role(&admin, "space_developer", "eve", ("space", &rival_space)).await;
        let eve = crate::tenancy::login(&p.url, "eve").await;
        let lc = json!({"options": {"loadbalancing": "least-connection"}});
        let (st, _) = eve.patch(&path, lc.clone()).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        crate::tenancy::create_user(&admin, "audrey").await;
        let (_, spaces) = admin.get(&format!("/v3/spaces/{space}")).await;
        let acme = spaces["relationships"]["organization"]["data"]["guid"]
            .as_str()
            .expect("org")
            .to_owned();
        crate::tenancy::role(&admin, "organization_user", "audrey", ("organization", &acme)).await;
        crate::tenancy::role(&admin, "space_auditor", "audrey", ("space", &space)).await;
        let audrey = crate::tenancy::login(&p.url, "audrey").await;
        let (st, e) = audrey.patch(&path, lc).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(lrp_route(&p, &app, uri).loadbalancing, None);
        p.stop().await;
    }
}
