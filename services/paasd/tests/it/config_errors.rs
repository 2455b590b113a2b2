//! An invalid configuration value stops start-up with one line naming the key.

use std::process::Command;

fn check(args: &[&str], env: &[(&str, &str)], toml: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paasd"));
    cmd.args(args).env("PAAS_DATA_DIR", dir.path());
    if let Some(text) = toml {
        let file = dir.path().join("paasd.toml");
        std::fs::write(&file, text).expect("write config");
        cmd.arg("--config").arg(&file);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("paasd runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_env_value_names_the_key_and_variable() {
    let (ok, err) = check(&["check-config"], &[("PAAS_API_ADDR", "not-an-address")], None);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("api.addr"), "{err}");
}

#[test]
fn bad_toml_value_names_the_key() {
    let (ok, err) =
        check(&["check-config"], &[], Some("[scheduler]\nconvergence_interval_secs = \"often\"\n"));
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("scheduler.convergence_interval_secs"), "{err}");
}

#[test]
fn unknown_key_is_refused() {
    let (ok, err) = check(&["check-config"], &[], Some("[router]\nno_such_setting = 1\n"));
    assert!(!ok);
    assert!(err.contains("no_such_setting"), "{err}");
}

#[test]
fn unknown_service_is_refused() {
    let (ok, err) = check(&["run", "--services", "api,teleporter"], &[], None);
    assert!(!ok);
    assert!(err.contains("teleporter"), "{err}");
}

#[test]
fn valid_configuration_prints_the_effective_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_paasd"))
        .arg("check-config")
        .env("PAAS_DATA_DIR", dir.path())
        .env("PAAS_LOGS_ADDR", "127.0.0.1:9999")
        .env("PAAS_ROUTER_ROUTE_SERVICES_SECRET", "rs-secret-value")
        .env("PAAS_API_DATABASE_URL", "postgres://paas:db-password@db.internal/paas")
        .output()
        .expect("paasd runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("127.0.0.1:9999"), "{text}");
    // Secrets are not printed.
    assert!(!text.contains("rs-secret-value") && !text.contains("db-password"), "{text}");
    assert!(text.contains("postgres://paas:(hidden)@db.internal/paas"), "{text}");
}
