//! Feature flags, on both engines: CC's list and defaults, an admin's changes, and every gated
//! action refusing a space developer (or, for `diego_docker` and `env_var_visibility`, an admin
//! too) with `CF-FeatureDisabled` and the admin's message.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, role};

fn refused(st: StatusCode, e: &Value, detail: &str) {
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["errors"][0]["title"], "CF-FeatureDisabled", "{e}");
    assert_eq!(e["errors"][0]["code"], 330002, "{e}");
    assert_eq!(e["errors"][0]["detail"], detail, "{e}");
}

async fn set(admin: &Client, name: &str, body: Value) -> Value {
    let (st, f) = admin.patch(&format!("/v3/feature_flags/{name}"), body).await;
    assert_eq!(st, StatusCode::OK, "{f}");
    f
}

#[tokio::test]
async fn admins_switch_flags_and_gated_actions_refuse_with_cfs_error() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);

        // The list: CC's flags with CC's defaults, paged and ordered like any list.
        let (st, all) = admin.get("/v3/feature_flags?per_page=50").await;
        assert_eq!(st, StatusCode::OK, "{all}");
        let flags = all["resources"].as_array().expect("resources");
        assert_eq!(all["pagination"]["total_results"], 13, "{all}");
        let off: Vec<&str> = flags
            .iter()
            .filter(|f| f["enabled"] == false)
            .filter_map(|f| f["name"].as_str())
            .collect();
        assert_eq!(
            off,
            ["diego_docker", "service_instance_sharing", "user_org_creation"],
            "ordered by name"
        );
        let tc = flags.iter().find(|f| f["name"] == "task_creation").expect("task_creation");
        assert_eq!(tc["custom_error_message"], Value::Null);
        assert_eq!(tc["updated_at"], Value::Null, "never changed: {tc}");
        assert!(tc["links"]["self"]["href"]
            .as_str()
            .expect("self")
            .ends_with("/v3/feature_flags/task_creation"));
        let (_, page) = admin.get("/v3/feature_flags?per_page=5&page=3").await;
        assert_eq!(page["resources"].as_array().expect("page").len(), 3, "{page}");
        let (st, e) = admin.get("/v3/feature_flags/no_such_flag").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
        assert_eq!(e["errors"][0]["detail"], "Feature flag not found");
        let (st, e) =
            admin.patch("/v3/feature_flags/task_creation", json!({"enabled": "no"})).await;
        assert!(st.is_client_error(), "{e}");
        assert!(e["errors"][0]["title"].as_str().expect("title").starts_with("CF-"), "{e}");
        let (st, e) = admin
            .patch("/v3/feature_flags/task_creation", json!({"custom_error_message": "a\nb"}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (_, tc) = admin.get("/v3/feature_flags/task_creation").await;
        assert_eq!(tc["enabled"], true, "a refused change changes nothing: {tc}");

        // A developer in a space, and an app there.
        let (org, space) = crate::push::org_and_space(&admin, "flags").await;
        create_user(&admin, "dev").await;
        assert_eq!(role(&admin, "organization_user", "dev", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "dev", ("space", &space)).await.0, 201);
        let dev = Client::new(&p.url, &harness::password_token(&p.url, "dev", "dev-pw").await);
        let (st, e) = dev.patch("/v3/feature_flags/app_scaling", json!({"enabled": false})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-NotAuthorized");
        let (st, f) = dev.get("/v3/feature_flags/app_scaling").await;
        assert_eq!((st, &f["enabled"]), (StatusCode::OK, &json!(true)), "anyone reads flags");
        let (st, app) = dev
            .post(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{app}");
        let app = app["guid"].as_str().expect("app").to_owned();

        // task_creation, with the admin's message; then cleared, the flag's name.
        let f = set(
            &admin,
            "task_creation",
            json!({"enabled": false, "custom_error_message": "tasks are paused"}),
        )
        .await;
        assert_eq!(
            (&f["enabled"], &f["custom_error_message"]),
            (&json!(false), &json!("tasks are paused"))
        );
        assert!(f["updated_at"].is_string(), "{f}");
        let task = json!({"command": "true"});
        let (st, e) = dev.post(&format!("/v3/apps/{app}/tasks"), task.clone()).await;
        refused(st, &e, "Feature Disabled: tasks are paused");
        set(&admin, "task_creation", json!({"custom_error_message": null})).await;
        let (st, e) = dev.post(&format!("/v3/apps/{app}/tasks"), task.clone()).await;
        refused(st, &e, "Feature Disabled: task_creation");
        let (st, e) = admin.post(&format!("/v3/apps/{app}/tasks"), task.clone()).await;
        assert_ne!(e["errors"][0]["title"], "CF-FeatureDisabled", "an admin passes: {st} {e}");
        set(&admin, "task_creation", json!({"enabled": true})).await;
        let (st, e) = dev.post(&format!("/v3/apps/{app}/tasks"), task).await;
        assert_ne!(e["errors"][0]["title"], "CF-FeatureDisabled", "on again: {st} {e}");

        // app_scaling, for both scale endpoints.
        set(&admin, "app_scaling", json!({"enabled": false})).await;
        let (st, e) = dev
            .post(&format!("/v3/apps/{app}/processes/web/actions/scale"), json!({"instances": 2}))
            .await;
        refused(st, &e, "Feature Disabled: app_scaling");
        let (_, procs) = dev.get(&format!("/v3/apps/{app}/processes")).await;
        let web = procs["resources"][0]["guid"].as_str().expect("web process").to_owned();
        let (st, e) =
            dev.post(&format!("/v3/processes/{web}/actions/scale"), json!({"instances": 2})).await;
        refused(st, &e, "Feature Disabled: app_scaling");
        let (st, e) = admin
            .post(&format!("/v3/processes/{web}/actions/scale"), json!({"instances": 2}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "an admin scales: {e}");

        // route_creation.
        set(&admin, "route_creation", json!({"enabled": false})).await;
        let (_, domains) = admin.get("/v3/domains").await;
        let domain = domains["resources"][0]["guid"].as_str().expect("shared domain").to_owned();
        let route = json!({"host": "web", "relationships": {"space": {"data": {"guid": space}}, "domain": {"data": {"guid": domain}}}});
        let (st, e) = dev.post("/v3/routes", route.clone()).await;
        refused(st, &e, "Feature Disabled: route_creation");
        let (st, r) = admin.post("/v3/routes", route).await;
        assert_eq!(st, StatusCode::CREATED, "{r}");

        // service_instance_creation.
        set(&admin, "service_instance_creation", json!({"enabled": false})).await;
        let ups = json!({"type": "user-provided", "name": "db", "credentials": {"u": "p"}, "relationships": {"space": {"data": {"guid": space}}}});
        let (st, e) = dev.post("/v3/service_instances", ups.clone()).await;
        refused(st, &e, "Feature Disabled: service_instance_creation");
        set(&admin, "service_instance_creation", json!({"enabled": true})).await;
        let (st, si) = dev.post("/v3/service_instances", ups).await;
        assert_eq!(st, StatusCode::CREATED, "{si}");

        // app_bits_upload: the package is made, its bits refused, and it still awaits them.
        set(&admin, "app_bits_upload", json!({"enabled": false})).await;
        let (st, pkg) = dev
            .post(
                "/v3/packages",
                json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{pkg}");
        let pkg = pkg["guid"].as_str().expect("pkg").to_owned();
        let zip = harness::zip_of(&[("app.py", 0o644, b"print(1)")]);
        let (st, e) = dev.upload(&pkg, json!([]), Some(zip.clone())).await;
        refused(st, &e, "Feature Disabled: app_bits_upload");
        let (_, still) = dev.get(&format!("/v3/packages/{pkg}")).await;
        assert_eq!(still["state"], "AWAITING_UPLOAD", "{still}");
        set(&admin, "app_bits_upload", json!({"enabled": true})).await;
        let (st, up) = dev.upload(&pkg, json!([]), Some(zip)).await;
        assert_eq!(st, StatusCode::OK, "{up}");

        // resource_matching off: nothing matches, so clients upload every file.
        let body = vec![b'x'; 70_000];
        crate::push::push_bits(&admin, &app, &[("app.py", b"print(1)"), ("big.bin", &body)]).await;
        let all = json!({"resources": [crate::push::resource("big.bin", &body)]});
        let (_, m) = dev.post("/v3/resource_matches", all.clone()).await;
        assert_eq!(m["resources"].as_array().expect("matches").len(), 1, "known: {m}");
        set(&admin, "resource_matching", json!({"enabled": false})).await;
        let (st, m) = dev.post("/v3/resource_matches", all).await;
        assert_eq!(st, StatusCode::CREATED, "{m}");
        assert_eq!(m["resources"], json!([]), "{m}");

        // env_var_visibility gates admins too; space_developer_env_var_visibility developers.
        set(&admin, "space_developer_env_var_visibility", json!({"enabled": false})).await;
        let (st, e) = dev.get(&format!("/v3/apps/{app}/env")).await;
        refused(st, &e, "Feature Disabled: space_developer_env_var_visibility");
        let (st, e) = dev.get(&format!("/v3/apps/{app}/environment_variables")).await;
        refused(st, &e, "Feature Disabled: space_developer_env_var_visibility");
        let (st, env) = admin.get(&format!("/v3/apps/{app}/env")).await;
        assert_eq!(st, StatusCode::OK, "{env}");
        set(&admin, "env_var_visibility", json!({"enabled": false})).await;
        let (st, e) = admin.get(&format!("/v3/apps/{app}/env")).await;
        refused(st, &e, "Feature Disabled: env_var_visibility");

        // diego_docker is off by default, for admins too; on, docker packages are made.
        let docker = json!({"type": "docker", "data": {"image": "nginx:1"}, "relationships": {"app": {"data": {"guid": app}}}});
        let (st, e) = admin.post("/v3/packages", docker.clone()).await;
        refused(st, &e, "Feature Disabled: diego_docker");
        set(&admin, "diego_docker", json!({"enabled": true})).await;
        let (st, d) = dev.post("/v3/packages", docker).await;
        assert_eq!(st, StatusCode::CREATED, "{d}");

        // user_org_creation: a user makes an org only when on, and manages it.
        let (st, e) = dev.post("/v3/organizations", json!({"name": "devs-own"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["errors"][0]["title"], "CF-NotAuthorized");
        set(&admin, "user_org_creation", json!({"enabled": true})).await;
        let (st, own) = dev.post("/v3/organizations", json!({"name": "devs-own"})).await;
        assert_eq!(st, StatusCode::CREATED, "{own}");
        let own = own["guid"].as_str().expect("org").to_owned();
        let (st, sp) = dev
            .post(
                "/v3/spaces",
                json!({"name": "mine", "relationships": {"organization": {"data": {"guid": own}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "the creator manages the org: {sp}");

        // private_domain_creation and set_roles_by_username, as the org's manager.
        set(&admin, "private_domain_creation", json!({"enabled": false})).await;
        let private = json!({"name": "devs.example.com", "relationships": {"organization": {"data": {"guid": own}}}});
        let (st, e) = dev.post("/v3/domains", private.clone()).await;
        refused(st, &e, "Feature Disabled: private_domain_creation");
        let (st, d) = admin.post("/v3/domains", private).await;
        assert_eq!(st, StatusCode::CREATED, "{d}");
        create_user(&admin, "friend").await;
        set(&admin, "set_roles_by_username", json!({"enabled": false})).await;
        let (st, e) = role(&dev, "organization_user", "friend", ("organization", &own)).await;
        refused(st, &e, "Feature Disabled: set_roles_by_username");
        set(&admin, "set_roles_by_username", json!({"enabled": true})).await;
        let (st, r) = role(&dev, "organization_user", "friend", ("organization", &own)).await;
        assert_eq!(st, StatusCode::CREATED, "{r}");

        p.stop().await;
    }
}
