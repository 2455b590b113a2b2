//! Every command against one platform, in the order a team would use them.

use std::time::Duration;

use crate::{platform, Paas, ADMIN_PASSWORD};

#[tokio::test]
async fn every_command_with_its_messages_and_exit_codes() {
    let p = platform().await;
    let admin = Paas::new();

    // Session, and what happens without one.
    let r = admin.run(None, &["apps"]);
    assert_eq!(r.code, 3, "{}", r.err);
    assert!(r.err.contains("paas login"), "{}", r.err);
    let r = admin.run(None, &["login", "-a", &p.api, "-u", "admin", "-p", "wrong"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("Credentials were rejected, please try again."), "{}", r.err);
    let r = admin.run(None, &["login", "-a", "http://127.0.0.1:9", "-u", "admin", "-p", "x"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("cannot connect"), "{}", r.err);
    assert!(admin
        .ok(&["login", "-a", &p.api, "-u", "admin", "-p", ADMIN_PASSWORD])
        .contains("user:           admin"));
    assert!(admin.ok(&["api"]).contains(&p.api));
    let r = admin.run(None, &["apps"]);
    assert_eq!(r.code, 3);
    assert!(r.err.contains("paas target"), "{}", r.err);

    // Orgs, spaces, users, roles, quotas.
    admin.ok(&["create-org", "acme"]);
    assert!(admin.ok(&["create-org", "acme"]).contains("already exists"), "idempotent");
    admin.ok(&["create-space", "dev", "-o", "acme"]);
    admin.ok(&["create-space", "tmp", "-o", "acme"]);
    assert!(admin.ok(&["target", "-o", "acme", "-s", "dev"]).contains("space:          dev"));
    let orgs = admin.ok(&["orgs"]);
    assert!(orgs.contains("acme"), "{orgs}");
    let spaces = admin.ok(&["spaces"]);
    assert!(spaces.contains("dev") && spaces.contains("tmp"), "{spaces}");
    admin.ok(&["delete-space", "tmp", "-f"]);
    assert!(!admin.ok(&["spaces"]).contains("tmp"));
    let r = admin.run(None, &["target", "-o", "nope"]);
    assert_eq!(r.code, 4, "{}", r.err);
    admin.ok(&["create-user", "dev1", "dev1-password"]);
    admin.ok(&["set-org-role", "dev1", "acme", "OrgManager"]);
    admin.ok(&["unset-org-role", "dev1", "acme", "OrgManager"]);
    admin.ok(&["set-space-role", "dev1", "acme", "dev", "SpaceDeveloper"]);
    let r = admin.run(None, &["set-space-role", "ghost", "acme", "dev", "SpaceDeveloper"]);
    assert_eq!(r.code, 4, "{}", r.err);
    let r = admin.run(None, &["set-space-role", "dev1", "acme", "dev", "Boss"]);
    assert_eq!(r.code, 2, "{}", r.err);
    let users = admin.ok(&["space-users", "acme", "dev"]);
    assert!(users.contains("space_developer") && users.contains("dev1"), "{users}");
    assert!(admin.ok(&["org-users", "acme"]).contains("dev1"));
    admin.ok(&["create-quota", "small", "-m", "512M", "-i", "256M", "-r", "10", "-a", "4"]);
    assert!(admin.ok(&["quotas"]).contains("small"));
    admin.ok(&["set-quota", "acme", "small"]);
    let bps = admin.ok(&["buildpacks"]);
    assert!(bps.contains("staticfile_buildpack") && bps.contains("binary_buildpack"), "{bps}");
    assert!(admin.ok(&["stacks"]).contains("bookworm"));
    let flags = admin.ok(&["feature-flags"]);
    let docker = flags.lines().find(|l| l.starts_with("diego_docker")).expect("diego_docker");
    assert!(docker.ends_with("disabled"), "{flags}");
    assert!(flags.lines().any(|l| l.starts_with("task_creation") && l.ends_with("enabled")));
    let r = admin.run(None, &["feature-flag", "no_such_flag"]);
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("paas feature-flags"), "says what to do: {}", r.err);
    let json: serde_json::Value =
        serde_json::from_str(&admin.ok(&["orgs", "--json"])).expect("--json is JSON");
    assert_eq!(json[0]["name"], "acme");
    assert!(admin.ok(&["domains"]).contains("apps.localhost"));
    admin.ok(&["create-private-domain", "acme", "acme.example"]);
    assert!(admin.ok(&["domains"]).contains("acme.example"));

    // A developer pushes and manages an app.
    let dev = Paas::new();
    dev.ok(&["login", "-a", &p.api, "-u", "dev1", "-p", "dev1-password"]);
    assert!(
        dev.ok(&["target"]).contains("space:          dev"),
        "the only org and space are targeted"
    );
    let app = tempfile::tempdir().expect("app");
    std::fs::write(app.path().join("Procfile"), "web: python3 -m http.server $PORT\n")
        .expect("procfile");
    std::fs::write(app.path().join("hello.txt"), "hello from the cli test\n").expect("file");
    std::fs::write(app.path().join("manifest.yml"), "applications:\n- name: web\n  memory: 64M\n")
        .expect("manifest");
    let r = dev.run(Some(app.path()), &["push"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("Staging app and tracing logs") && r.out.contains("procfile_buildpack"),
        "{}",
        r.out
    );
    assert!(r.out.contains("#0   running"), "{}", r.out);
    let body = testkit::eventually("routed", Duration::from_secs(30), || async {
        let res = reqwest::Client::new()
            .get(format!("{}/hello.txt", p.router))
            .header("host", "web.apps.localhost")
            .send()
            .await
            .ok()?;
        (res.status() == 200).then_some(())?;
        res.text().await.ok()
    })
    .await
    .expect("served");
    assert_eq!(body, "hello from the cli test\n");
    std::fs::write(app.path().join("hello.txt"), "changed\n").expect("edit");
    let r = dev.run(Some(app.path()), &["push"]);
    assert!(
        r.out.contains("1 of 3 need uploading") || r.out.contains("1 of 2 need uploading"),
        "only the change travels:\n{}",
        r.out
    );
    assert!(dev.ok(&["apps"]).contains("web:1/1"));
    assert!(admin.ok(&["disable-feature-flag", "task_creation"]).contains("OK"));
    assert!(admin.ok(&["feature-flag", "task_creation"]).contains("disabled"));
    let r = dev.run(None, &["run-task", "web", "--command", "true"]);
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    assert!(r.err.contains("Feature Disabled: task_creation"), "{}", r.err);
    let r = dev.run(None, &["enable-feature-flag", "task_creation"]);
    assert_eq!(r.code, 1, "only admins switch flags: {}", r.err);
    admin.ok(&["enable-feature-flag", "task_creation"]);
    assert!(dev.ok(&["app", "web"]).contains("web.apps.localhost"));
    dev.ok(&["set-env", "web", "GREETING", "hi"]);
    assert!(dev.ok(&["env", "web"]).contains("GREETING: hi"));
    dev.ok(&["unset-env", "web", "GREETING"]);
    assert!(!dev.ok(&["env", "web"]).contains("GREETING"));
    let r = dev.run(None, &["scale", "web", "-i", "9", "-m", "512M"]);
    assert_eq!(r.code, 1, "quota exceeded:\n{}\n{}", r.out, r.err);
    assert!(r.err.contains("quota exceeded"), "{}", r.err);
    dev.ok(&["scale", "web", "-i", "2"]);
    dev.ok(&["stop", "web"]);
    dev.ok(&["start", "web"]);
    dev.ok(&["restart", "web"]);
    dev.ok(&["restage", "web"]);
    assert!(dev.ok(&["events", "web"]).contains("audit.app.restart"));
    start_stages_an_app_pushed_without_starting(&dev);
    dev.ok(&["create-route", "apps.localhost", "--hostname", "extra"]);
    dev.ok(&["map-route", "web", "apps.localhost", "--hostname", "extra"]);
    assert!(dev.ok(&["routes"]).contains("extra.apps.localhost"));
    dev.ok(&["unmap-route", "web", "apps.localhost", "--hostname", "extra"]);
    dev.ok(&["delete-route", "apps.localhost", "--hostname", "extra", "-f"]);
    // An HTTP/2 (gRPC) destination: the route's destination says so, and the router speaks h2c.
    dev.ok(&[
        "map-route",
        "web",
        "apps.localhost",
        "--hostname",
        "grpc",
        "--app-protocol",
        "http2",
    ]);
    let routes: serde_json::Value =
        serde_json::from_str(&dev.ok(&["curl", "/v3/routes?hosts=grpc"])).expect("JSON");
    assert_eq!(routes["resources"][0]["destinations"][0]["protocol"], "http2", "{routes}");
    let r = dev.run(None, &["map-route", "web", "apps.localhost", "--app-protocol", "tcp"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("http1") && r.err.contains("http2"), "names the choices: {}", r.err);
    dev.ok(&["delete-route", "apps.localhost", "--hostname", "grpc", "-f"]);

    // A route service, on a route of its own (nothing is requested through it here).
    dev.ok(&["create-route", "apps.localhost", "--hostname", "guarded"]);
    dev.ok(&["cups", "plain", "-p", r#"{"k":"v"}"#]);
    fn brs<'a>(service: &'a str, host: &'a str) -> [&'a str; 5] {
        ["bind-route-service", "apps.localhost", service, "--hostname", host]
    }
    let r = dev.run(None, &brs("plain", "guarded"));
    assert_eq!(r.code, 1, "an instance without a route service URL:\n{}\n{}", r.out, r.err);
    assert!(
        r.err.contains("does not support route binding")
            && r.err.contains("paas update-user-provided-service plain -r https://"),
        "{}",
        r.err
    );
    let r = dev.run(None, &brs("ghost", "guarded"));
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("Service instance 'ghost' not found."), "{}", r.err);
    let r = dev.run(None, &brs("plain", "nowhere"));
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("Route with host 'nowhere', domain 'apps.localhost'"), "{}", r.err);
    dev.ok(&["cups", "rs", "-r", "https://rs.example.com/filter"]);
    let r = dev.run(None, &["brs", "apps.localhost", "rs", "-n", "guarded", "-c", "not json"]);
    assert_eq!(r.code, 2, "{}", r.err);
    let r = dev.run(None, &["brs", "apps.localhost", "rs", "-n", "guarded", "-c", r#"{"a":1}"#]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("Binding parameters are not supported"), "{}", r.err);
    let out = dev.ok(&brs("rs", "guarded"));
    assert!(out.contains("Binding route guarded.apps.localhost to service instance rs"), "{out}");
    assert!(dev.ok(&["brs", "apps.localhost", "rs", "-n", "guarded"]).contains("already bound"));
    let guarded_line = |routes: String| {
        routes.lines().find(|l| l.contains("guarded.apps.localhost")).map(str::to_owned)
    };
    let routes = dev.ok(&["routes"]);
    assert!(
        routes.lines().any(|l| l.starts_with("space") && l.ends_with("service instance")),
        "{routes}"
    );
    let line = guarded_line(routes.clone()).expect("guarded listed");
    assert!(line.trim_end().ends_with("   rs"), "{routes}");
    dev.ok(&["unbind-route-service", "apps.localhost", "rs", "--hostname", "guarded", "-f"]);
    let line = guarded_line(dev.ok(&["routes"])).expect("guarded listed");
    assert!(line.trim_end().ends_with("guarded.apps.localhost"), "{line}");
    let out = dev.ok(&["urs", "apps.localhost", "rs", "-n", "guarded", "-f"]);
    assert!(out.contains("Route guarded.apps.localhost was not bound to service instance rs."));
    dev.ok(&brs("rs", "guarded"));
    dev.ok(&["delete-service", "rs", "-f"]);
    let line = guarded_line(dev.ok(&["routes"])).expect("guarded listed");
    assert!(
        line.trim_end().ends_with("guarded.apps.localhost"),
        "deleting the instance unbinds: {line}"
    );
    dev.ok(&["delete-service", "plain", "-f"]);
    dev.ok(&["delete-route", "apps.localhost", "--hostname", "guarded", "-f"]);
    let recent = dev.ok(&["logs", "web", "--recent"]);
    assert!(recent.contains("[STG/") && recent.contains("[API/"), "{recent}");

    // A user-provided service with a syslog drain, into a real rsyslog.
    let port = testkit::free_port();
    let syslog = testkit::syslog::Rsyslog::start(port).await;
    let r = dev.run(None, &["cups", "drain", "-l", "ftp://logs.example.com:21"]);
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    assert!(r.err.contains("Syslog drain url must be"), "{}", r.err);
    let r = dev.run(None, &["cups", "drain", "-p", "not json"]);
    assert_eq!(r.code, 2, "{}", r.err);
    let drain = format!("syslog://127.0.0.1:{port}");
    dev.ok(&["cups", "drain", "-l", &drain, "-p", r#"{"user":"u1"}"#, "-t", "logging"]);
    assert!(dev.ok(&["services"]).contains(&drain));
    dev.ok(&["bind-service", "web", "drain"]);
    assert!(dev.ok(&["services"]).contains("web"));
    assert!(dev.ok(&["bind-service", "web", "drain"]).contains("already bound"));
    let app_guid = dev.ok(&["app", "web", "--guid"]).trim().to_owned();
    let lines = testkit::eventually("app logs in rsyslog", Duration::from_secs(60), || async {
        let _ = reqwest::Client::new()
            .get(format!("{}/hello.txt", p.router))
            .header("host", "web.apps.localhost")
            .send()
            .await;
        let lines = syslog.lines();
        lines.iter().any(|l| l.contains("[RTR/") && l.contains(&app_guid)).then_some(lines)
    })
    .await
    .unwrap_or_else(|_| panic!("no router line for the app in rsyslog: {:?}", syslog.lines()));
    let rtr = lines.iter().find(|l| l.contains("[RTR/")).expect("rtr");
    assert!(rtr.starts_with("<14>1 ") && rtr.contains(" acme.dev.web "), "{rtr}");
    dev.ok(&["unbind-service", "web", "drain"]);
    dev.ok(&["delete-service", "drain", "-f"]);
    assert!(dev.ok(&["services"]).contains("No service instances found."));
    let r = dev.run(None, &["app", "nope"]);
    assert_eq!(r.code, 4);
    assert!(r.err.contains("App 'nope' not found."), "{}", r.err);
    let r = dev.run(None, &["create-org", "dev-org"]);
    assert_eq!(r.code, 1, "developers cannot create orgs");
    let curl: serde_json::Value =
        serde_json::from_str(&dev.ok(&["curl", "/v3/apps"])).expect("curl prints JSON");
    assert_eq!(curl["resources"][0]["name"], "web");
    let r = dev.run(None, &["curl", "/v3/apps/not-a-guid"]);
    assert_eq!(r.code, 1);
    dev.ok(&["delete", "web", "-f", "-r"]);
    assert_eq!(dev.run(None, &["app", "web"]).code, 4);
    let r = dev.run(None, &["push"]);
    assert_eq!(r.code, 2, "push without an app name or manifest is a usage error: {}", r.err);
    assert!(dev.ok(&["completion", "bash"]).contains("paas"));

    admin.ok(&["delete-user", "dev1", "-f"]);
    admin.ok(&["delete-org", "acme", "-f"]);
    assert!(!admin.ok(&["orgs"]).contains("acme"));
    admin.ok(&["logout"]);
    assert_eq!(admin.run(None, &["orgs"]).code, 3);
}

/// As cf v8: `start` of an app pushed with `--no-start` stages its package first, with the
/// staging output, and an app without any package fails with the API's reason.
fn start_stages_an_app_pushed_without_starting(dev: &Paas) {
    let dir = tempfile::tempdir().expect("app");
    std::fs::write(dir.path().join("Procfile"), "web: python3 -m http.server $PORT\n")
        .expect("procfile");
    let r = dev.run(Some(dir.path()), &["push", "later", "--no-start", "--no-route", "-m", "64M"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.out.contains("not started"), "{}", r.out);
    let r = dev.run(None, &["start", "later"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("Staging app and tracing logs") && r.out.contains("procfile_buildpack"),
        "start stages first, showing the output:\n{}",
        r.out
    );
    assert!(r.out.contains("#0   running"), "{}", r.out);
    let r = dev.run(None, &["restart", "later"]);
    assert!(!r.out.contains("Staging app"), "a staged app is not staged again:\n{}", r.out);
    dev.ok(&["delete", "later", "-f"]);

    let spaces: serde_json::Value =
        serde_json::from_str(&dev.ok(&["curl", "/v3/spaces?names=dev"])).expect("JSON");
    let space = spaces["resources"][0]["guid"].as_str().expect("space guid");
    let body = format!(
        r#"{{"name":"empty","relationships":{{"space":{{"data":{{"guid":"{space}"}}}}}}}}"#
    );
    dev.ok(&["curl", "/v3/apps", "-X", "POST", "-d", &body]);
    let r = dev.run(None, &["start", "empty"]);
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    assert!(r.err.contains("Assign a droplet before starting this app."), "{}", r.err);
    dev.ok(&["delete", "empty", "-f"]);
}
