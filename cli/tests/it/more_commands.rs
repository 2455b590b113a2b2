//! The cf v8 commands beyond the team journey of `commands.rs`: org and space details and
//! renames, app settings, packages and droplets, routes and domains, services, buildpacks,
//! quotas, labels and the session. Each test has its own platform, org and space.

use serde_json::Value;

use crate::{platform, Paas, Platform, ADMIN_PASSWORD};

/// One platform for all of them: several `paasd dev` at once are too much for a small machine.
#[tokio::test]
async fn more_cf_commands() {
    let p = platform().await;
    orgs_and_spaces_show_and_rename(&p);
    apps_packages_droplets_and_health_checks(&p);
    routes_and_domains(&p);
    services_and_buildpacks(&p);
    org_and_space_quotas(&p);
    labels_on_every_kind(&p);
    environment_variable_groups(&p);
    manifests_sources_and_leftovers(&p);
    auth_and_passwd(&p);
    session_token_and_version(&p).await;
}

/// The admin's CLI, logged in, with `org` / `space` created and targeted.
fn admin_in(p: &Platform, org: &str, space: &str) -> Paas {
    let admin = Paas::new();
    admin.ok(&["login", "-a", &p.api, "-u", "admin", "-p", ADMIN_PASSWORD]);
    admin.ok(&["create-org", org]);
    admin.ok(&["create-space", space, "-o", org]);
    admin.ok(&["target", "-o", org, "-s", space]);
    admin
}

/// `paas curl PATH` as JSON.
fn curl(paas: &Paas, path: &str) -> Value {
    serde_json::from_str(&paas.ok(&["curl", path])).expect("curl answers JSON")
}

/// Require exit `code` and `text` on stderr.
fn fails(paas: &Paas, args: &[&str], code: i32, text: &str) {
    let r = paas.run(None, args);
    assert_eq!(r.code, code, "paas {args:?}:\n{}\n{}", r.out, r.err);
    assert!(r.err.contains(text), "paas {args:?} should say {text:?}:\n{}", r.err);
}

fn orgs_and_spaces_show_and_rename(p: &Platform) {
    let admin = admin_in(p, "info-org", "info-space");

    let out = admin.ok(&["org", "info-org"]);
    assert!(out.starts_with("Getting info for org info-org as admin...\n"), "{out}");
    let line = |out: &str, key: &str| {
        out.lines().find(|l| l.starts_with(key)).map(str::to_owned).unwrap_or_default()
    };
    assert!(line(&out, "name:").ends_with("info-org"), "{out}");
    assert!(line(&out, "spaces:").ends_with("info-space"), "{out}");
    assert!(line(&out, "domains:").contains("apps.localhost"), "{out}");
    let guid = admin.ok(&["org", "info-org", "--guid"]);
    let orgs = curl(&admin, "/v3/organizations?names=info-org");
    assert_eq!(guid.trim(), orgs["resources"][0]["guid"].as_str().expect("guid"));
    fails(&admin, &["org", "no-such-org"], 4, "paas orgs");

    let out = admin.ok(&["space", "info-space"]);
    assert!(
        out.starts_with("Getting info for space info-space in org info-org as admin...\n"),
        "{out}"
    );
    assert!(line(&out, "org:").ends_with("info-org"), "{out}");
    let sguid = admin.ok(&["space", "info-space", "--guid"]);
    let spaces = curl(&admin, "/v3/spaces?names=info-space");
    assert_eq!(sguid.trim(), spaces["resources"][0]["guid"].as_str().expect("guid"));
    fails(&admin, &["space", "no-such-space"], 4, "paas spaces");

    let out = admin.ok(&["rename-org", "info-org", "info-org2"]);
    assert!(out.contains("Renaming org info-org to info-org2 as admin...\nOK"), "{out}");
    assert!(admin.ok(&["orgs"]).lines().any(|l| l == "info-org2"));
    assert!(admin.ok(&["target"]).contains("info-org2"), "the target follows the new name");
    let out = admin.ok(&["rename-space", "info-space", "info-space2"]);
    assert!(
        out.contains("Renaming space info-space to info-space2 in org info-org2 as admin...\nOK"),
        "{out}"
    );
    assert!(admin.ok(&["spaces"]).lines().any(|l| l == "info-space2"));
    assert_eq!(curl(&admin, "/v3/spaces?names=info-space")["resources"], Value::Array(vec![]));
    fails(&admin, &["rename-org", "info-org", "x"], 4, "paas orgs");
    fails(&admin, &["rename-space", "info-space", "x"], 4, "paas spaces");
    fails(&admin, &["rename-org", "info-org2"], 2, "Usage");
}

/// The text after `prefix` on the first line holding it, up to `end`.
fn between<'a>(out: &'a str, prefix: &str, end: &str) -> &'a str {
    let rest = out.split_once(prefix).map(|(_, r)| r).unwrap_or_default();
    rest.split_once(end).map(|(v, _)| v).unwrap_or(rest).trim()
}

fn apps_packages_droplets_and_health_checks(p: &Platform) {
    let admin = admin_in(p, "apps-org", "apps-space");
    let here = "in org apps-org / space apps-space as admin...";

    fails(&admin, &["create-app", "web", "--app-type", "lambda"], 2, "lambda");
    let out = admin.ok(&["create-app", "web"]);
    assert!(out.starts_with(&format!("Creating app web {here}\nOK")), "{out}");
    assert!(admin.ok(&["create-app", "web"]).contains("already exists"), "idempotent");
    let apps = curl(&admin, "/v3/apps?names=web");
    assert_eq!(apps["resources"][0]["state"], "STOPPED");
    let app_guid = apps["resources"][0]["guid"].as_str().expect("app guid").to_owned();

    // A package from a folder, staged into a droplet, made current, downloaded.
    fails(&admin, &["stage-package", "web"], 4, "paas create-package web");
    let dir = tempfile::tempdir().expect("app");
    std::fs::write(dir.path().join("Procfile"), "web: python3 -m http.server $PORT\n")
        .expect("procfile");
    let folder = dir.path().to_str().expect("utf-8 path");
    let out = admin.ok(&["create-package", "web", "-p", folder]);
    assert!(out.contains(&format!("Uploading and creating bits package for app web {here}")));
    let pkg = between(&out, "Package with guid '", "'").to_owned();
    assert_eq!(curl(&admin, &format!("/v3/packages/{pkg}"))["state"], "READY");
    let out = admin.ok(&["packages", "web"]);
    assert!(out.lines().any(|l| l.starts_with(&pkg) && l.contains("ready")), "{out}");
    fails(&admin, &["download-droplet", "web"], 4, "paas droplets web");
    let out = admin.ok(&["stage-package", "web", "--package-guid", &pkg]);
    assert!(out.contains("Package staged") && out.contains("procfile_buildpack"), "{out}");
    let droplet = between(&out, "droplet guid:", "\n").to_owned();
    let out = admin.ok(&["droplets", "web"]);
    assert!(out.lines().any(|l| l.starts_with(&droplet) && l.contains("staged")), "{out}");
    assert!(!out.contains("(current)"), "staging alone sets no droplet: {out}");
    let out = admin.ok(&["set-droplet", "web", &droplet]);
    assert!(out.contains(&format!("Setting app web to droplet {droplet} {here}\nOK")), "{out}");
    let rel = curl(&admin, &format!("/v3/apps/{app_guid}/relationships/current_droplet"));
    assert_eq!(rel["data"]["guid"], droplet.as_str());
    assert!(admin.ok(&["droplets", "web"]).contains(&format!("{droplet} (current)")));
    let out = admin.ok(&["download-droplet", "web", "--path", folder]);
    let file = dir.path().join(format!("droplet_{droplet}.tgz"));
    assert!(out.contains("Droplet downloaded successfully at"), "{out}");
    let bytes = std::fs::read(&file).expect("droplet written");
    assert_eq!(bytes.get(..2), Some(&[0x1f, 0x8b][..]), "a gzip file");
    fails(&admin, &["set-droplet", "web", "no-such-droplet"], 1, "Ensure the droplet exists");

    // Health checks.
    let out = admin.ok(&["get-health-check", "web"]);
    assert!(out.starts_with(&format!("Getting health check type for app web {here}")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("web") && l.contains("port")), "{out}");
    let out = admin.ok(&[
        "set-health-check",
        "web",
        "http",
        "--endpoint",
        "/health",
        "--invocation-timeout",
        "5",
    ]);
    assert!(out.contains("Updating health check type for app web process web"), "{out}");
    assert!(out.contains("TIP: An app restart is required"), "{out}");
    let proc = curl(&admin, &format!("/v3/apps/{app_guid}/processes/web"));
    assert_eq!(proc["health_check"]["type"], "http");
    assert_eq!(proc["health_check"]["data"]["endpoint"], "/health");
    assert_eq!(proc["health_check"]["data"]["invocation_timeout"], 5);
    let out = admin.ok(&["get-health-check", "web"]);
    let row: Vec<&str> = out.lines().last().unwrap_or_default().split_whitespace().collect();
    assert_eq!(row, ["web", "http", "/health", "5"], "{out}");
    admin.ok(&["set-health-check", "web", "process"]);
    let proc = curl(&admin, &format!("/v3/apps/{app_guid}/processes/web"));
    assert_eq!(proc["health_check"]["type"], "process");
    assert_eq!(proc["health_check"]["data"]["endpoint"], Value::Null);
    fails(&admin, &["set-health-check", "web", "bogus"], 2, "bogus");
    fails(&admin, &["set-health-check", "web", "port", "--process", "worker"], 4, "worker");
    fails(&admin, &["get-health-check", "nope"], 4, "paas apps");

    // Renaming.
    let out = admin.ok(&["rename", "web", "web2"]);
    assert!(out.contains(&format!("Renaming app web to web2 {here}\nOK")), "{out}");
    assert_eq!(curl(&admin, &format!("/v3/apps/{app_guid}"))["name"], "web2");
    fails(&admin, &["rename", "web", "web3"], 4, "paas apps");
    fails(&admin, &["packages", "web"], 4, "paas apps");

    // Stacks.
    let out = admin.ok(&["stack", "bookworm"]);
    assert!(out.starts_with("Getting info for stack bookworm as admin..."), "{out}");
    assert!(out.contains("description:") && out.contains("Debian 12"), "{out}");
    assert_eq!(admin.ok(&["stack", "bookworm", "--guid"]).trim(), "bookworm");
    fails(&admin, &["stack", "windows"], 4, "paas stacks");
}

fn routes_and_domains(p: &Platform) {
    let admin = admin_in(p, "routes-org", "routes-space");

    admin.ok(&["create-route", "apps.localhost", "--hostname", "shop", "--path", "/cart"]);
    let out = admin.ok(&["check-route", "apps.localhost", "--hostname", "shop", "--path", "/cart"]);
    assert_eq!(out, "Checking for route...\nRoute 'shop.apps.localhost/cart' does exist.\nOK\n");
    let out = admin.ok(&["check-route", "apps.localhost", "--hostname", "shop"]);
    assert!(out.contains("Route 'shop.apps.localhost' does not exist."), "{out}");
    fails(&admin, &["check-route", "nowhere.example"], 4, "paas domains");

    admin.ok(&["create-app", "shopfront"]);
    admin.ok(&[
        "map-route",
        "shopfront",
        "apps.localhost",
        "--hostname",
        "shop",
        "--path",
        "/cart",
    ]);
    let out = admin.ok(&["route", "apps.localhost", "--hostname", "shop", "--path", "/cart"]);
    assert!(
        out.starts_with(
            "Showing route shop.apps.localhost/cart in org routes-org / space routes-space as admin ..."
        ),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("host:") && l.ends_with("shop")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("path:") && l.ends_with("/cart")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("\tshopfront") && l.contains("web")), "{out}");
    fails(&admin, &["route", "apps.localhost", "--hostname", "nope"], 4, "paas routes");
    fails(&admin, &["route", "nowhere.example"], 4, "paas domains");

    // Shared domains: admins create and delete them; routes keep them.
    let out = admin.ok(&["create-shared-domain", "shared.example"]);
    assert!(out.starts_with("Creating shared domain shared.example as admin...\nOK"), "{out}");
    let found = curl(&admin, "/v3/domains?names=shared.example");
    assert_eq!(found["resources"][0]["relationships"]["organization"]["data"], Value::Null);
    assert!(admin.ok(&["domains"]).lines().any(|l| l.starts_with("shared.example")));
    fails(&admin, &["create-shared-domain", "not_a_domain"], 1, "not a valid domain");
    fails(&admin, &["delete-private-domain", "shared.example", "-f"], 1, "delete-shared-domain");
    admin.ok(&["create-route", "shared.example", "--hostname", "a"]);
    fails(&admin, &["delete-shared-domain", "shared.example", "-f"], 1, "has routes");
    admin.ok(&["delete-route", "shared.example", "--hostname", "a", "-f"]);
    let out = admin.ok(&["delete-shared-domain", "shared.example", "-f"]);
    assert!(out.contains("Deleting shared domain shared.example as admin...\nOK"), "{out}");
    assert_eq!(curl(&admin, "/v3/domains?names=shared.example")["resources"], Value::Array(vec![]));
    assert!(admin.ok(&["delete-shared-domain", "shared.example", "-f"]).contains("does not exist"));

    // Private domains.
    admin.ok(&["create-private-domain", "routes-org", "private.example"]);
    fails(&admin, &["delete-shared-domain", "private.example", "-f"], 1, "delete-private-domain");
    let r = admin.run(None, &["delete-private-domain", "private.example"]);
    assert!(r.out.contains("'private.example' has not been deleted."), "no answer, no delete");
    let out = admin.ok(&["delete-private-domain", "private.example", "-f"]);
    assert!(out.contains("Deleting private domain private.example as admin...\nOK"), "{out}");
    assert!(!admin.ok(&["domains"]).contains("private.example"));
}

fn services_and_buildpacks(p: &Platform) {
    let admin = admin_in(p, "svc-org", "svc-space");
    let here = "in org svc-org / space svc-space as admin...";

    admin.ok(&["cups", "db", "-p", r#"{"uri":"postgres://x"}"#, "-t", "sql,main"]);
    admin.ok(&["create-app", "api"]);
    admin.ok(&["bind-service", "api", "db", "--binding-name", "primary"]);
    let out = admin.ok(&["service", "db"]);
    assert!(out.starts_with(&format!("Showing info of service db {here}")), "{out}");
    let line = |key: &str| out.lines().find(|l| l.starts_with(key)).unwrap_or_default();
    assert!(line("type:").ends_with("user-provided"), "{out}");
    assert!(line("tags:").ends_with("sql, main"), "{out}");
    assert!(line("status:").ends_with("create succeeded"), "{out}");
    let bound = out.split("Showing bound apps:").nth(1).unwrap_or_default();
    assert!(bound.lines().any(|l| l.starts_with("api") && l.contains("primary")), "{out}");
    let guid = admin.ok(&["service", "db", "--guid"]);
    let found = curl(&admin, "/v3/service_instances?names=db");
    assert_eq!(guid.trim(), found["resources"][0]["guid"].as_str().expect("guid"));
    fails(&admin, &["service", "nodb"], 4, "paas services");

    let out = admin.ok(&["rename-service", "db", "maindb"]);
    assert!(out.contains(&format!("Renaming service db to maindb {here}\nOK")), "{out}");
    let renamed = curl(&admin, &format!("/v3/service_instances/{}", guid.trim()));
    assert_eq!(renamed["name"], "maindb");
    assert!(admin.ok(&["services"]).lines().any(|l| l.starts_with("maindb")));
    fails(&admin, &["rename-service", "db", "x"], 4, "paas services");

    // Buildpacks.
    admin.ok(&["curl", "/v3/buildpacks", "-X", "POST", "-d", r#"{"name":"spare_buildpack"}"#]);
    assert!(admin.ok(&["buildpacks"]).contains("spare_buildpack"));
    let r = admin.run(None, &["delete-buildpack", "spare_buildpack"]);
    assert!(r.out.contains("Delete cancelled"), "no answer, no delete: {}", r.out);
    let out = admin.ok(&["delete-buildpack", "spare_buildpack", "-f"]);
    assert!(out.contains("Deleting buildpack spare_buildpack as admin...\nOK"), "{out}");
    let left = curl(&admin, "/v3/buildpacks?names=spare_buildpack");
    assert_eq!(left["resources"], Value::Array(vec![]));
    let out = admin.ok(&["delete-buildpack", "spare_buildpack", "-f"]);
    assert!(out.contains("Buildpack 'spare_buildpack' does not exist."), "{out}");
    fails(&admin, &["update-buildpack", "spare_buildpack", "-i", "1"], 4, "paas buildpacks");
    fails(&admin, &["delete-buildpack", "-f"], 2, "Usage");
}

fn org_and_space_quotas(p: &Platform) {
    let admin = admin_in(p, "quota-org", "quota-space");

    let out = admin.ok(&["create-org-quota", "qsmall", "-m", "1G", "-i", "256M", "-r", "10"]);
    assert!(out.starts_with("Creating org quota qsmall as admin...\nOK"), "{out}");
    let q = &curl(&admin, "/v3/organization_quotas?names=qsmall")["resources"][0];
    assert_eq!(q["apps"]["total_memory_in_mb"], 1024);
    assert_eq!(q["apps"]["per_process_memory_in_mb"], 256);
    assert_eq!(q["apps"]["total_instances"], Value::Null);
    assert_eq!(q["routes"]["total_routes"], 10);
    let out = admin.ok(&["org-quotas"]);
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("qsmall"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["qsmall", "1G", "256M", "10", "unlimited"], "{out}");
    assert!(admin.ok(&["quotas"]).contains("qsmall"), "quotas is an alias");
    let out = admin.ok(&["org-quota", "qsmall"]);
    assert!(out.starts_with("Getting org quota qsmall as admin...\n"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("instance memory:") && l.ends_with("256M")));

    let out = admin.ok(&["update-org-quota", "qsmall", "-n", "qbig", "-m", "-1", "-a", "20"]);
    assert!(out.starts_with("Updating org quota qsmall as admin...\nOK"), "{out}");
    let q = &curl(&admin, "/v3/organization_quotas?names=qbig")["resources"][0];
    assert_eq!(q["apps"]["total_memory_in_mb"], Value::Null, "-1 is unlimited");
    assert_eq!(q["apps"]["per_process_memory_in_mb"], 256, "what is not given stays");
    assert_eq!(q["apps"]["total_instances"], 20);
    fails(&admin, &["update-org-quota", "qbig"], 2, "nothing to update");
    fails(&admin, &["update-org-quota", "qbig", "-r", "many"], 2, "-r");
    fails(&admin, &["create-org-quota", "qbad", "-m", "lots"], 2, "-m");
    fails(&admin, &["org-quota", "qsmall"], 4, "paas org-quotas");
    fails(&admin, &["set-org-quota", "quota-org", "qsmall"], 4, "paas org-quotas");

    let out = admin.ok(&["set-org-quota", "quota-org", "qbig"]);
    assert!(out.contains("Setting quota qbig to org quota-org as admin...\nOK"), "{out}");
    let org = &curl(&admin, "/v3/organizations?names=quota-org")["resources"][0];
    assert_eq!(org["relationships"]["quota"]["data"]["guid"], q["guid"]);
    assert!(admin
        .ok(&["org", "quota-org"])
        .lines()
        .any(|l| l.starts_with("quota:") && l.ends_with("qbig")));
    admin.ok(&["set-quota", "quota-org", "qbig"]);

    // Space quotas, in the targeted org.
    let out = admin.ok(&["create-space-quota", "sq", "-m", "512M", "-a", "2"]);
    assert!(out.starts_with("Creating space quota sq for org quota-org as admin...\nOK"), "{out}");
    let out = admin.ok(&["space-quotas"]);
    let row: Vec<&str> =
        out.lines().find(|l| l.starts_with("sq")).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row, ["sq", "512M", "unlimited", "unlimited", "2"], "{out}");
    assert!(admin.ok(&["space-quota", "sq"]).contains("Getting space quota sq for org quota-org"));
    let out = admin.ok(&["set-space-quota", "quota-space", "sq"]);
    assert!(out.contains("Setting space quota sq to space quota-space as admin...\nOK"), "{out}");
    let sq = &curl(&admin, "/v3/space_quotas?names=sq")["resources"][0];
    let space = &curl(&admin, "/v3/spaces?names=quota-space")["resources"][0];
    assert_eq!(sq["relationships"]["spaces"]["data"][0]["guid"], space["guid"]);
    let info = admin.ok(&["space", "quota-space"]);
    assert!(info.lines().any(|l| l.starts_with("space quota:") && l.ends_with("sq")), "{info}");
    let out = admin.ok(&["unset-space-quota", "quota-space", "sq"]);
    assert!(out.contains("Unassigning space quota sq from space quota-space as admin...\nOK"));
    let sq = &curl(&admin, "/v3/space_quotas?names=sq")["resources"][0];
    assert_eq!(sq["relationships"]["spaces"]["data"], Value::Array(vec![]));
    fails(&admin, &["set-space-quota", "quota-space", "nosq"], 4, "paas space-quotas");
    fails(&admin, &["set-space-quota", "nospace", "sq"], 4, "paas spaces");
    fails(&admin, &["create-space-quota", "sq2", "-i", "-5"], 2, "-i");
    let out = admin.ok(&["update-space-quota", "sq", "-n", "sq-wide", "-a", "-1", "-r", "4"]);
    assert!(out.contains("Updating space quota sq for org quota-org as admin...\nOK"), "{out}");
    let wide = &curl(&admin, "/v3/space_quotas?names=sq-wide")["resources"][0];
    assert_eq!(wide["apps"]["total_instances"], Value::Null, "{wide}");
    assert_eq!(wide["routes"]["total_routes"], 4, "{wide}");
    assert_eq!(wide["apps"]["total_memory_in_mb"], 512, "kept: {wide}");
    fails(&admin, &["update-space-quota", "sq-wide"], 2, "nothing to update");
    fails(&admin, &["update-space-quota", "nosq", "-a", "3"], 4, "paas space-quotas");
    admin.ok(&["update-space-quota", "sq-wide", "-n", "sq"]);
    let out = admin.ok(&["delete-space-quota", "sq", "-f"]);
    assert!(out.contains("Deleting space quota sq for org quota-org as admin...\nOK"), "{out}");
    assert_eq!(curl(&admin, "/v3/space_quotas?names=sq")["resources"], Value::Array(vec![]));
    assert!(admin.ok(&["delete-space-quota", "sq", "-f"]).contains("does not exist"));

    // An org quota goes only once no org has it.
    fails(&admin, &["delete-org-quota", "qbig", "-f"], 1, "give them another quota");
    admin.ok(&["set-org-quota", "quota-org", "default"]);
    let out = admin.ok(&["delete-org-quota", "qbig", "-f"]);
    assert!(out.starts_with("Deleting org quota qbig as admin...\nOK"), "{out}");
    assert_eq!(
        curl(&admin, "/v3/organization_quotas?names=qbig")["resources"],
        Value::Array(vec![])
    );
    assert!(admin.ok(&["delete-org-quota", "qbig", "-f"]).contains("does not exist"));
}

fn environment_variable_groups(p: &Platform) {
    let admin = admin_in(p, "evg-org", "evg-space");
    let out = admin.ok(&["running-environment-variable-group"]);
    assert!(out.contains("No running environment variable group has been set."), "{out}");
    let out = admin.ok(&["srevg", r#"{"PROXY":"http://proxy:3128","LANG":"C.UTF-8"}"#]);
    assert!(
        out.starts_with(
            "Setting the contents of the running environment variable group as admin...\nOK"
        ),
        "{out}"
    );
    let out = admin.ok(&["revg"]);
    let row = out.lines().find(|l| l.starts_with("PROXY")).unwrap_or_default().to_owned();
    assert!(row.ends_with("http://proxy:3128"), "{out}");
    admin.ok(&["set-running-environment-variable-group", r#"{"LANG":"C"}"#]);
    let group = curl(&admin, "/v3/environment_variable_groups/running");
    assert_eq!(group["var"], serde_json::json!({"LANG": "C"}), "set replaces the group");
    admin.ok(&["ssevg", r#"{"PIP_INDEX_URL":"http://mirror/simple"}"#]);
    assert!(admin.ok(&["staging-environment-variable-group"]).contains("http://mirror/simple"));
    fails(&admin, &["srevg", "LANG=C"], 2, "valid JSON object");
    fails(&admin, &["srevg", r#"{"N": 5}"#], 2, "valid JSON object");
    fails(&admin, &["srevg", r#"{"VCAP_X": "1"}"#], 1, "VCAP_");
    admin.ok(&["srevg", "{}"]);
    admin.ok(&["ssevg", "{}"]);
}

fn manifests_sources_and_leftovers(p: &Platform) {
    let admin = admin_in(p, "copy-org", "copy-space");
    let dir = tempfile::tempdir().expect("app");
    std::fs::write(dir.path().join("Procfile"), "web: python3 -m http.server $PORT\n")
        .expect("app");
    std::fs::write(dir.path().join("index.html"), "copied source\n").expect("app");
    let folder = dir.path().to_str().expect("utf-8");
    admin.ok(&["create-app", "origin"]);
    admin.ok(&["create-package", "origin", "-p", folder]);
    admin.ok(&["create-app", "copy"]);

    // copy-source: the package travels, is staged and the target runs it.
    let out = admin.ok(&["copy-source", "origin", "copy"]);
    assert!(out.contains("Copying source from app origin to target app copy"), "{out}");
    let app = &curl(&admin, "/v3/apps?names=copy")["resources"][0];
    assert_eq!(app["state"], "STARTED", "{app}");
    let guid = app["guid"].as_str().expect("guid");
    let pkgs = curl(&admin, &format!("/v3/apps/{guid}/packages"));
    assert_eq!(pkgs["pagination"]["total_results"], 1, "{pkgs}");
    admin.ok(&["create-app", "copy2"]);
    admin.ok(&["copy-source", "origin", "copy2", "--no-restart"]);
    assert_eq!(curl(&admin, "/v3/apps?names=copy2")["resources"][0]["state"], "STOPPED");
    fails(&admin, &["copy-source", "nowhere", "copy"], 4, "paas apps");
    admin.ok(&["create-app", "empty"]);
    fails(&admin, &["copy-source", "empty", "copy"], 4, "Push it first");

    // push with ((variables)) from --vars-file and --var, a log rate limit, and --no-manifest.
    std::fs::write(
        dir.path().join("manifest.yml"),
        "applications:\n- name: ((name))\n  memory: ((memory))\n  no-route: true\n",
    )
    .expect("manifest");
    std::fs::write(dir.path().join("vars.yml"), "name: from-file\nmemory: 64M\n").expect("vars");
    let vars = dir.path().join("vars.yml");
    let r = admin.run(
        Some(dir.path()),
        &[
            "push",
            "--vars-file",
            vars.to_str().expect("utf-8"),
            "--var",
            "name=varred",
            "-l",
            "16K",
            "--no-start",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let app = &curl(&admin, "/v3/apps?names=varred")["resources"][0];
    let web =
        curl(&admin, &format!("/v3/apps/{}/processes/web", app["guid"].as_str().expect("guid")));
    assert_eq!(web["memory_in_mb"], 64, "{web}");
    assert_eq!(web["log_rate_limit_in_bytes_per_second"], 16384, "{web}");
    let r = admin.run(Some(dir.path()), &["push"]);
    assert_eq!(r.code, 2, "an unset variable: {}", r.err);
    assert!(r.err.contains("name") && r.err.contains("memory"), "names what is missing: {}", r.err);
    let r = admin.run(Some(dir.path()), &["push", "bare", "--no-manifest", "--no-start"]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    std::fs::remove_file(dir.path().join("manifest.yml")).expect("rm");

    // push --droplet: a downloaded droplet runs under another name, nothing staged.
    let drop_dir = tempfile::tempdir().expect("droplet dir");
    let tgz = drop_dir.path().join("copy.tgz");
    admin.ok(&["download-droplet", "copy", "--path", tgz.to_str().expect("utf-8")]);
    let r = admin.run(None, &["push", "dropped", "--droplet", tgz.to_str().expect("utf-8")]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.out.contains("Uploading droplet bits...") && !r.out.contains("Staging"), "{}", r.out);
    let app = &curl(&admin, "/v3/apps?names=dropped")["resources"][0];
    assert_eq!(app["state"], "STARTED", "{app}");
    let current =
        curl(&admin, &format!("/v3/apps/{}/droplets/current", app["guid"].as_str().expect("guid")));
    assert!(current["process_types"]["web"].as_str().is_some_and(|c| !c.is_empty()), "{current}");
    fails(&admin, &["push", "dropped", "--droplet", "/no/such.tgz"], 2, "cannot read the droplet");
    fails(
        &admin,
        &["push", "dropped", "--droplet", tgz.to_str().expect("utf-8"), "-p", "."],
        2,
        "--droplet",
    );

    // apply-manifest: apps created or changed from a manifest, nothing started.
    let applied = tempfile::tempdir().expect("manifest dir");
    let m = applied.path().join("manifest.yml");
    std::fs::write(
        &m,
        "applications:\n- name: ((name))\n  instances: 2\n  env:\n    MODE: applied\n",
    )
    .expect("write");
    let out =
        admin.ok(&["apply-manifest", "-f", m.to_str().expect("utf-8"), "--var", "name=applied"]);
    assert!(out.contains("Applying manifest file") && out.contains("OK"), "{out}");
    let app = &curl(&admin, "/v3/apps?names=applied")["resources"][0];
    assert_eq!(app["state"], "STOPPED", "{app}");
    let guid = app["guid"].as_str().expect("guid");
    assert_eq!(curl(&admin, &format!("/v3/apps/{guid}/processes/web"))["instances"], 2);
    assert_eq!(
        curl(&admin, &format!("/v3/apps/{guid}/environment_variables"))["var"]["MODE"],
        "applied"
    );
    fails(&admin, &["apply-manifest", "-f", m.to_str().expect("utf-8")], 2, "name");
    fails(&admin, &["apply-manifest", "-f", "/no/such/manifest.yml"], 2, "cannot read manifest");

    // create-app-manifest: what the API says of the app, as a file.
    let out_dir = tempfile::tempdir().expect("out");
    let path = out_dir.path().to_str().expect("utf-8");
    let out = admin.ok(&["create-app-manifest", "copy", "-p", path]);
    assert!(out.contains("Manifest file created successfully"), "{out}");
    let yaml = std::fs::read_to_string(out_dir.path().join("copy_manifest.yml")).expect("file");
    assert!(yaml.contains("name: copy"), "{yaml}");
    fails(&admin, &["create-app-manifest", "ghost"], 4, "paas apps");

    // space-ssh-allowed follows allow/disallow-space-ssh.
    let out = admin.ok(&["space-ssh-allowed", "copy-space"]);
    assert!(out.contains("ssh support is enabled in space 'copy-space'."), "{out}");
    admin.ok(&["disallow-space-ssh", "copy-space"]);
    assert!(admin.ok(&["space-ssh-allowed", "copy-space"]).contains("disabled"));
    admin.ok(&["allow-space-ssh", "copy-space"]);
    fails(&admin, &["space-ssh-allowed", "nospace"], 4, "paas spaces");

    // rename-buildpack, isolation-segments.
    admin.ok(&["curl", "/v3/buildpacks", "-X", "POST", "-d", r#"{"name":"old_buildpack"}"#]);
    let out = admin.ok(&["rename-buildpack", "old_buildpack", "new_buildpack"]);
    assert!(
        out.contains("Renaming buildpack old_buildpack to new_buildpack as admin...\nOK"),
        "{out}"
    );
    assert_eq!(
        curl(&admin, "/v3/buildpacks?names=new_buildpack")["pagination"]["total_results"],
        1
    );
    fails(&admin, &["rename-buildpack", "old_buildpack", "x"], 4, "paas buildpacks");
    admin.ok(&["delete-buildpack", "new_buildpack", "-f"]);
    assert!(admin.ok(&["isolation-segments"]).lines().any(|l| l.trim() == "shared"));

    // delete-orphaned-routes: only the route mapped to no app goes.
    admin.ok(&["create-route", "apps.localhost", "--hostname", "orphan"]);
    admin.ok(&["map-route", "copy", "apps.localhost", "--hostname", "kept"]);
    let out = admin.ok(&["delete-orphaned-routes", "-f"]);
    assert!(out.contains("Deleting orphaned routes as admin...\nOK"), "{out}");
    let space = &curl(&admin, "/v3/spaces?names=copy-space")["resources"][0];
    let routes =
        curl(&admin, &format!("/v3/routes?space_guids={}", space["guid"].as_str().expect("guid")));
    let hosts: Vec<&str> = routes["resources"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["host"].as_str())
        .collect();
    assert!(hosts.contains(&"kept") && !hosts.contains(&"orphan"), "{hosts:?}");
}

fn labels_on_every_kind(p: &Platform) {
    let admin = admin_in(p, "label-org", "label-space");
    admin.ok(&["create-app", "tagged"]);
    admin.ok(&["cups", "tagged-db"]);
    admin.ok(&["curl", "/v3/buildpacks", "-X", "POST", "-d", r#"{"name":"tagged_buildpack"}"#]);
    let here = "in org label-org / space label-space as admin...";

    let out = admin.ok(&["labels", "app", "tagged"]);
    assert_eq!(out, format!("Getting labels for app tagged {here}\n\nNo labels found.\n"));
    let out = admin.ok(&["set-label", "app", "tagged", "env=prod", "tier=web"]);
    assert_eq!(out, format!("Setting label(s) for app tagged {here}\nOK\n"));
    let app = &curl(&admin, "/v3/apps?names=tagged")["resources"][0];
    assert_eq!(app["metadata"]["labels"]["env"], "prod");
    let out = admin.ok(&["labels", "app", "tagged"]);
    let rows: Vec<Vec<&str>> =
        out.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [vec!["key", "value"], vec!["env", "prod"], vec!["tier", "web"]], "{out}");
    let out = admin.ok(&["unset-label", "app", "tagged", "tier"]);
    assert_eq!(out, format!("Removing label(s) for app tagged {here}\nOK\n"));
    let app = &curl(&admin, "/v3/apps?names=tagged")["resources"][0];
    assert_eq!(app["metadata"]["labels"], serde_json::json!({"env": "prod"}));

    let cases = [
        ("org", "label-org", "/v3/organizations?names=label-org", "org label-org as admin..."),
        (
            "space",
            "label-space",
            "/v3/spaces?names=label-space",
            "space label-space in org label-org as admin...",
        ),
        (
            "buildpack",
            "tagged_buildpack",
            "/v3/buildpacks?names=tagged_buildpack",
            "buildpack tagged_buildpack as admin...",
        ),
        (
            "service-instance",
            "tagged-db",
            "/v3/service_instances?names=tagged-db",
            "service-instance tagged-db in org label-org / space label-space as admin...",
        ),
        (
            "domain",
            "apps.localhost",
            "/v3/domains?names=apps.localhost",
            "domain apps.localhost as admin...",
        ),
        ("stack", "bookworm", "/v3/stacks?names=bookworm", "stack bookworm as admin..."),
    ];
    for (kind, name, path, shown) in cases {
        let out = admin.ok(&["set-label", kind, name, "team=blue"]);
        assert!(out.starts_with(&format!("Setting label(s) for {shown}\nOK")), "{out}");
        assert_eq!(curl(&admin, path)["resources"][0]["metadata"]["labels"]["team"], "blue");
        let out = admin.ok(&["labels", kind, name]);
        assert!(out.starts_with(&format!("Getting labels for {shown}")), "{out}");
        assert!(out.lines().any(|l| l.split_whitespace().eq(["team", "blue"])), "{out}");
        admin.ok(&["unset-label", kind, name, "team"]);
        assert_eq!(curl(&admin, path)["resources"][0]["metadata"]["labels"], serde_json::json!({}));
    }

    fails(&admin, &["labels", "route", "x"], 2, "route");
    fails(&admin, &["set-label", "app", "tagged", "novalue"], 2, "KEY=VALUE");
    fails(&admin, &["set-label", "app", "tagged"], 2, "Usage");
    fails(&admin, &["set-label", "app", "tagged", "bad key=x"], 1, "not a valid key");
    fails(&admin, &["labels", "app", "ghost"], 4, "paas apps");
    fails(&admin, &["set-label", "org", "ghost", "a=b"], 4, "paas orgs");
    fails(&admin, &["unset-label", "buildpack", "ghost", "a"], 4, "paas buildpacks");
    fails(&admin, &["labels", "stack", "ghost"], 4, "paas stacks");
    fails(&admin, &["labels", "domain", "ghost.example"], 4, "paas domains");
}

fn auth_and_passwd(p: &Platform) {
    let admin = admin_in(p, "pw-org", "pw-space");
    admin.ok(&["create-user", "pat", "pat-password"]);
    let pat = Paas::new();
    pat.ok(&["api", &p.api]);
    let out = pat.ok(&["auth", "pat", "pat-password"]);
    assert!(out.contains("Authenticating...\nOK"), "{out}");
    fails(&pat, &["auth", "pat", "wrong"], 1, "Credentials were rejected");
    let r = pat.run_input(&["passwd"], "wrong\nnew-secret\nnew-secret\n");
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    assert!(r.err.contains("Old password is incorrect"), "{}", r.err);
    let r = pat.run_input(&["passwd"], "pat-password\nnew-secret\nother\n");
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("verification does not match"), "{}", r.err);
    let r = pat.run_input(&["passwd"], "pat-password\nnew-secret\nnew-secret\n");
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.out.contains("Please log in again."), "{}", r.out);
    fails(&pat, &["orgs"], 3, "paas login");
    fails(&pat, &["auth", "pat", "pat-password"], 1, "Credentials were rejected");
    pat.ok(&["auth", "pat", "new-secret"]);
}

async fn session_token_and_version(p: &Platform) {
    let cli = Paas::new();
    assert_eq!(cli.ok(&["version"]), format!("paas version {}\n", env!("CARGO_PKG_VERSION")));
    fails(&cli, &["version", "--bogus"], 2, "--bogus");
    fails(&cli, &["oauth-token"], 3, "paas login");

    cli.ok(&["login", "-a", &p.api, "-u", "admin", "-p", ADMIN_PASSWORD]);
    let out = cli.ok(&["oauth-token"]);
    let token = out.trim().strip_prefix("bearer ").expect("bearer TOKEN");
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(cli.home.path().join("config.json")).expect("config"),
    )
    .expect("config is JSON");
    assert_eq!(saved["access_token"], token, "the refreshed token is kept");
    let res = reqwest::Client::new()
        .get(format!("{}/v3/organizations", p.api))
        .header("authorization", out.trim())
        .send()
        .await
        .expect("api answers");
    assert_eq!(res.status(), 200, "the printed value authorizes requests as it is");
    cli.ok(&["logout"]);
    fails(&cli, &["oauth-token"], 3, "paas login");
}
