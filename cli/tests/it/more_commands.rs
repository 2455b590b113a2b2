//! The cf v8 commands beyond the team journey of `commands.rs`: org and space details and
//! renames, app settings, packages and droplets, routes and domains, services, buildpacks,
//! quotas, labels and the session. Each test has its own platform, org and space.

use serde_json::Value;

use crate::{platform, Paas, Platform, ADMIN_PASSWORD};

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

#[tokio::test]
async fn orgs_and_spaces_show_and_rename() {
    let p = platform().await;
    let admin = admin_in(&p, "info-org", "info-space");

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
