//! Managed services from the CLI against `paasd dev` and the test broker: register the
//! broker, enable access for one org, create a service, a key, bind it to an app and read the
//! credentials back, then tear it all down.

use serde_json::Value;

use crate::{platform, Paas, ADMIN_PASSWORD};

fn curl(paas: &Paas, path: &str) -> Value {
    serde_json::from_str(&paas.ok(&["curl", path])).expect("curl answers JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_services_from_the_cli() {
    let broker = testkit::broker::start("cli-broker", "cli-broker-pw").await;
    let p = platform().await;
    let admin = Paas::new();
    admin.ok(&["login", "-a", &p.api, "-u", "admin", "-p", ADMIN_PASSWORD]);
    admin.ok(&["create-org", "svc-org"]);
    admin.ok(&["create-space", "svc-space", "-o", "svc-org"]);
    admin.ok(&["create-org", "other-org"]);
    admin.ok(&["target", "-o", "svc-org", "-s", "svc-space"]);

    let out = admin.ok(&["create-service-broker", "tb", "cli-broker", "cli-broker-pw", &broker]);
    assert!(out.contains("Creating service broker tb as admin...\nOK"), "{out}");
    let out = admin.ok(&["service-brokers"]);
    assert!(out.lines().any(|l| l.starts_with("tb") && l.contains(&broker)), "{out}");
    let r = admin.run(
        None,
        &[
            "create-service-broker",
            "bad",
            "cli-broker",
            "cli-broker-pw",
            &format!("{broker}/broken"),
        ],
    );
    assert_ne!(r.code, 0);
    assert!(r.err.contains("The catalog is being rebuilt"), "{}", r.err);

    let out = admin.ok(&["service-access"]);
    assert!(out.contains("broker: tb"), "{out}");
    assert!(
        out.lines().any(|l| l.contains("test-db") && l.contains("sync") && l.contains("none")),
        "{out}"
    );
    let out = admin.ok(&["enable-service-access", "test-db", "-p", "sync", "-o", "svc-org"]);
    assert!(out.contains("Enabling access to plan sync of service offering test-db for org svc-org as admin...\nOK"), "{out}");
    let out = admin.ok(&["enable-service-access", "test-db", "-p", "async", "-o", "svc-org"]);
    assert!(out.ends_with("OK\n"), "{out}");
    let out = admin.ok(&["service-access", "-e", "test-db"]);
    assert!(
        out.lines().any(|l| l.contains(" sync ") && l.contains("limited") && l.contains("svc-org")),
        "{out}"
    );

    let out = admin.ok(&["marketplace"]);
    assert!(out.lines().any(|l| l.starts_with("test-db") && l.contains("tb")), "{out}");
    let out = admin.ok(&["marketplace", "-e", "test-db"]);
    assert!(out.contains("broker: tb"), "{out}");
    assert!(out.lines().any(|l| l.trim_start().starts_with("async")), "{out}");

    let out = admin.ok(&[
        "create-service",
        "test-db",
        "async",
        "db",
        "-c",
        r#"{"size": 3}"#,
        "-t",
        "a,b",
        "--wait",
    ]);
    assert!(
        out.contains("Creating service instance db in org svc-org / space svc-space as admin..."),
        "{out}"
    );
    assert!(out.contains("Service instance db created.\nOK"), "{out}");
    let out = admin.ok(&["service", "db"]);
    assert!(out.contains("create succeeded"), "{out}");
    for (key, value) in [("offering:", "test-db"), ("plan:", "async"), ("broker:", "tb")] {
        assert!(out.lines().any(|l| l.starts_with(key) && l.trim_end().ends_with(value)), "{out}");
    }
    let r = admin.run(None, &["create-service", "test-db", "no-such-plan", "x"]);
    assert_ne!(r.code, 0);
    assert!(
        r.err
            .contains("The plan 'no-such-plan' could not be found for service offering 'test-db'."),
        "{}",
        r.err
    );

    let out = admin.ok(&["create-service-key", "db", "k1"]);
    assert!(
        out.contains("Creating service key k1 for service instance db as admin...\nOK"),
        "{out}"
    );
    let out = admin.ok(&["service-keys", "db"]);
    assert!(out.lines().any(|l| l.starts_with("k1") && l.contains("create succeeded")), "{out}");
    let out = admin.ok(&["service-key", "db", "k1"]);
    let json_start = out.find('{').expect("json");
    let details: Value = serde_json::from_str(&out[json_start..]).expect("key json");
    assert!(details["credentials"]["uri"].as_str().expect("uri").starts_with("testdb://"), "{out}");

    admin.ok(&["create-app", "web"]);
    admin.ok(&["bind-service", "web", "db"]);
    let app = curl(&admin, "/v3/apps?names=web");
    let guid = app["resources"][0]["guid"].as_str().expect("app").to_owned();
    let env = curl(&admin, &format!("/v3/apps/{guid}/env"));
    let vcap = &env["system_env_json"]["VCAP_SERVICES"]["test-db"][0];
    assert_eq!(vcap["plan"], "async", "{env}");
    assert_eq!(vcap["instance_name"], "db");
    assert!(vcap["credentials"]["uri"].as_str().expect("uri").starts_with("testdb://"));

    // Shared into another space, whose app binds it; unshared again.
    admin.ok(&["create-space", "away", "-o", "svc-org"]);
    let r = admin.run(None, &["share-service", "db", "-s", "away"]);
    assert_eq!(r.code, 1, "sharing is off by default: {}", r.err);
    assert!(r.err.contains("Feature Disabled: service_instance_sharing"), "{}", r.err);
    admin.ok(&["enable-feature-flag", "service_instance_sharing"]);
    let out = admin.ok(&["share-service", "db", "-s", "away"]);
    assert!(
        out.contains("Sharing service instance db into org svc-org / space away as admin...\nOK"),
        "{out}"
    );
    let si = curl(&admin, "/v3/service_instances?names=db");
    let si_guid = si["resources"][0]["guid"].as_str().expect("instance").to_owned();
    let shared =
        curl(&admin, &format!("/v3/service_instances/{si_guid}/relationships/shared_spaces"));
    assert_eq!(shared["data"].as_array().map(Vec::len), Some(1), "{shared}");
    let out = admin.ok(&["unshare-service", "db", "-s", "away", "-f"]);
    assert!(
        out.contains("Unsharing service instance db from org svc-org / space away as admin...\nOK"),
        "{out}"
    );
    let shared =
        curl(&admin, &format!("/v3/service_instances/{si_guid}/relationships/shared_spaces"));
    assert_eq!(shared["data"], serde_json::json!([]), "{shared}");

    let out = admin.ok(&["update-service", "db", "-c", r#"{"size": 4}"#, "--wait"]);
    assert!(out.contains("Update of service instance db completed.\nOK"), "{out}");

    // The broker's plans move to a new version: the instance offers an upgrade, which runs.
    let out = admin.ok(&["marketplace", "-e", "test-db"]);
    assert!(out.lines().any(|l| l.contains("async") && l.contains("USD 9.50/MONTHLY")), "{out}");
    let out = admin.ok(&["service", "db"]);
    assert!(out.contains("There is no upgrade available for this service."), "{out}");
    let r = admin.run(None, &["upgrade-service", "db", "-f"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("No upgrade is available."), "{}", r.err);
    reqwest::Client::new()
        .post(format!("{broker}/test/catalog"))
        .json(&serde_json::json!({"version": "1.1.0"}))
        .send()
        .await
        .expect("new catalog");
    admin.ok(&["update-service-broker", "tb", "cli-broker", "cli-broker-pw", &broker]);
    let out = admin.ok(&["service", "db"]);
    assert!(out.contains("There is an upgrade available for this service."), "{out}");
    assert!(out.contains("Upgrade description: Test DB engine 1.1.0"), "{out}");
    let out = admin.ok(&["upgrade-service", "db", "-f", "--wait"]);
    assert!(
        out.contains("Upgrading service instance db in org svc-org / space svc-space as admin..."),
        "{out}"
    );
    assert!(out.contains("Upgrade of service instance db completed.\nOK"), "{out}");
    let si = curl(&admin, "/v3/service_instances?names=db");
    assert_eq!(si["resources"][0]["maintenance_info"]["version"], "1.1.0", "{si}");
    assert!(admin.ok(&["service", "db"]).contains("There is no upgrade available"));

    admin.ok(&["unbind-service", "web", "db"]);
    let out = admin.ok(&["delete-service-key", "db", "k1", "-f"]);
    assert!(out.contains("Deleting key k1 for service instance db as admin...\nOK"), "{out}");
    admin.ok(&["delete-service", "db", "-f"]);
    let state: Value = reqwest::get(format!("{broker}/test/state"))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["instances"], serde_json::json!({}), "{state}");
    assert_eq!(state["bindings"], serde_json::json!({}), "{state}");

    let out = admin.ok(&["disable-service-access", "test-db", "-p", "sync", "-o", "svc-org"]);
    assert!(out.ends_with("OK\n"), "{out}");

    // The broker is gone for good: its offering is purged with an instance left behind, and
    // the broker is not asked.
    admin.ok(&["create-service", "test-db", "async", "db2", "--wait"]);
    let r = admin.run(None, &["purge-service-offering", "nope", "-f"]);
    assert_eq!(r.code, 4);
    assert!(r.err.contains("Service offering 'nope' not found."), "{}", r.err);
    let out = admin.ok(&["purge-service-offering", "test-db", "-b", "tb", "-f"]);
    assert!(out.contains("Purging service offering test-db as admin...\nOK"), "{out}");
    let r = admin.run(None, &["service", "db2"]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(admin.ok(&["marketplace"]).contains("No service offerings found."));
    let state: Value = reqwest::get(format!("{broker}/test/state"))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["instances"].as_object().map(|o| o.len()), Some(1), "{state}");
    let out = admin.ok(&["rename-service-broker", "tb", "tb2"]);
    assert!(out.contains("Renaming service broker tb to tb2 as admin...\nOK"), "{out}");
    admin.ok(&["delete-service-broker", "tb2", "-f"]);
    assert!(admin.ok(&["service-brokers"]).contains("No service brokers found"));
}
