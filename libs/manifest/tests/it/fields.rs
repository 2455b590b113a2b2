//! Parsing: CF's documented manifest examples, every field, both spellings, unknown keys,
//! vars, anchors.

use std::collections::BTreeMap;

use manifest::{parse, parse_with_vars, ManifestError, ServiceEntry};
use serde_yaml::Value;

#[test]
fn contract_examples() {
    let m = parse("applications:\n- name: myapp\n  default-route: true\n").expect("parse");
    assert_eq!(m.applications[0].name, "myapp");
    assert_eq!(m.applications[0].default_route, Some(true));
    assert!(m.validate().is_ok());

    let m = parse(
        "applications:\n- name: myapp\n  path: /home/me/src/myapp\n  memory: 256M\n  instances: 1\n  default-route: true\n  routes:\n  - route: myapp.apps.example.com\n",
    )
    .expect("parse");
    let app = &m.applications[0];
    assert_eq!(app.path.as_deref(), Some("/home/me/src/myapp"));
    assert_eq!(app.routes.as_ref().map(|r| r[0].route.as_str()), Some("myapp.apps.example.com"));
    let web = &app.process_specs()[0];
    assert_eq!(
        (web.process_type.as_str(), web.memory_mb, web.instances),
        ("web", Some(256), Some(1))
    );
    assert!(m.validate().is_ok());
}

const FULL: &str = r#"
version: 1
applications:
- name: full
  path: ./app
  memory: 1G
  disk_quota: 2G
  log-rate-limit-per-second: 16K
  instances: 3
  buildpacks: [ruby_buildpack, https://github.com/x/y.git]
  stack: cflinuxfs4
  lifecycle: buildpack
  command: bundle exec rackup
  env: {A: "1", B: 2, C: true}
  routes:
  - route: full.example.com/api
    protocol: http2
    options: {loadbalancing: least-connection}
  random-route: false
  no-route: false
  health-check-type: http
  health-check-http-endpoint: /health
  health-check-invocation-timeout: 5
  health-check-interval: 10
  readiness-health-check-type: http
  readiness-health-check-http-endpoint: /ready
  readiness-health-check-invocation-timeout: 2
  readiness-health-check-interval: 15
  timeout: 90
  processes:
  - type: worker
    command: bin/worker
    disk_quota: 512M
    memory: 128M
    instances: 2
    health-check-type: process
    timeout: 30
    log-rate-limit-per-second: -1
    user: vcap
  services:
  - db
  - name: cache
    binding_name: c
    parameters: {size: small}
  sidecars:
  - name: proxy
    command: ./proxy
    process_types: [web, worker]
    memory: 64M
  metadata:
    labels: {team: a}
    annotations: {note: b}
  features: {ssh: true, revisions: false}
"#;

#[test]
fn every_field() {
    let m = parse(FULL).expect("parse");
    assert!(m.validate().is_ok(), "{:?}", m.validate());
    let app = &m.applications[0];
    assert_eq!(app.disk_quota.as_deref(), Some("2G"));
    assert_eq!(app.requested_buildpacks().map(|b| b.len()), Some(2));
    assert_eq!(app.lifecycle_type(), "buildpack");
    assert_eq!(app.command, Some(Some("bundle exec rackup".to_string())));
    assert_eq!(app.env_strings().get("B").map(String::as_str), Some("2"));
    assert_eq!(app.env_strings().get("C").map(String::as_str), Some("true"));
    assert_eq!(app.health.readiness_health_check_interval, Some(15));
    assert_eq!(app.services.as_ref().map(|s| s[1].name()), Some("cache"));
    assert!(
        matches!(&app.services.as_ref().expect("services")[0], ServiceEntry::Name(n) if n == "db")
    );
    assert_eq!(app.sidecars.as_ref().map(|s| s[0].process_types.len()), Some(2));
    assert_eq!(
        app.metadata.as_ref().and_then(|m| m.labels.get("team").cloned().flatten()).as_deref(),
        Some("a")
    );
    assert_eq!(app.features.as_ref().and_then(|f| f.get("ssh").copied()), Some(true));
    let specs = app.process_specs();
    assert_eq!(specs.len(), 2);
    assert_eq!(
        (specs[0].memory_mb, specs[0].disk_mb, specs[0].log_rate_bps),
        (Some(1024), Some(2048), Some(16384))
    );
    assert_eq!(specs[0].health.timeout, Some(90));
    assert_eq!(
        (specs[1].process_type.as_str(), specs[1].log_rate_bps, specs[1].instances),
        ("worker", Some(-1), Some(2))
    );
    assert!(
        app.extra.is_empty(),
        "unexpected unknown keys {:?}",
        app.extra.keys().collect::<Vec<_>>()
    );
}

#[test]
fn both_spellings_are_accepted() {
    let m = parse("applications:\n- name: a\n  disk-quota: 1G\n  health_check_type: none\n  no_route: true\n  log_rate_limit_per_second: 1M\n  processes:\n  - type: web\n    disk-quota: 2G\n    readiness_health_check_type: port\n").expect("parse");
    let app = &m.applications[0];
    assert_eq!(app.disk_quota.as_deref(), Some("1G"));
    assert_eq!(app.no_route, Some(true));
    assert_eq!(app.log_rate_limit_per_second.as_deref(), Some("1M"));
    let specs = app.process_specs();
    assert_eq!(specs.len(), 1, "a web entry in processes replaces the top-level web settings");
    assert_eq!(specs[0].disk_mb, Some(2048));
    assert_eq!(specs[0].health.readiness_health_check_type.as_deref(), Some("port"));
    assert!(app.extra.is_empty());
}

#[test]
fn none_health_check_means_process() {
    let m = parse("applications:\n- name: a\n  health-check-type: none\n").expect("parse");
    assert_eq!(
        m.applications[0].process_specs()[0].health.health_check_type.as_deref(),
        Some("process")
    );
    assert!(m.validate().is_ok());
}

#[test]
fn unknown_keys_round_trip() {
    let text = "x-top: keep\napplications:\n- name: a\n  custom-key: {nested: [1, 2]}\n  routes:\n  - route: a.example.com\n    weird: yes-please\n  processes:\n  - type: web\n    future-flag: true\n";
    let m = parse(text).expect("parse");
    assert!(m.extra.contains_key("x-top"));
    assert!(m.applications[0].extra.contains_key("custom-key"));
    let yaml = m.to_yaml().expect("render");
    assert!(yaml.starts_with("---\n"));
    let again = parse(&yaml).expect("reparse");
    assert_eq!(again, m);
    assert!(yaml.contains("future-flag: true") && yaml.contains("weird: yes-please"), "{yaml}");
}

#[test]
fn command_null_is_distinct_from_absent() {
    let m = parse("applications:\n- name: a\n  command: null\n- name: b\n").expect("parse");
    assert_eq!(m.applications[0].command, Some(None));
    assert_eq!(m.applications[1].command, None);
    assert!(m.to_yaml().expect("yaml").contains("command: null"));
}

#[test]
fn anchors_and_aliases_are_refused() {
    let text = "base: &base\n  memory: 1G\napplications:\n- name: a\n  <<: *base\n";
    assert_eq!(parse(text), Err(ManifestError::Anchors));
    assert_eq!(ManifestError::Anchors.to_string(), "Manifest does not support Anchors and Aliases");
    assert!(parse("applications:\n- name: a\n  command: echo a&b *c\n").is_ok());
}

#[test]
fn variables_are_substituted() {
    let mut vars = BTreeMap::new();
    vars.insert("name".to_string(), Value::from("app1"));
    vars.insert("count".to_string(), Value::from(3));
    vars.insert("domain".to_string(), Value::from("example.com"));
    let text = "applications:\n- name: ((name))\n  instances: ((count))\n  routes:\n  - route: ((name)).((domain))\n";
    let m = parse_with_vars(text, &vars).expect("parse");
    let app = &m.applications[0];
    assert_eq!((app.name.as_str(), app.instances), ("app1", Some(3)));
    assert_eq!(app.routes.as_ref().map(|r| r[0].route.as_str()), Some("app1.example.com"));
    let missing =
        parse_with_vars("applications:\n- name: ((a))\n  command: run ((b))\n", &BTreeMap::new());
    assert_eq!(missing, Err(ManifestError::MissingVars(vec!["a".to_string(), "b".to_string()])));
    assert_eq!(
        missing.err().map(|e| e.to_string()).as_deref(),
        Some("Expected to find variables: a, b")
    );
}

#[test]
fn syntax_and_structure_errors() {
    assert!(matches!(parse("applications: [\n"), Err(ManifestError::Syntax(_))));
    assert!(matches!(parse(""), Err(ManifestError::Structure(_))));
    match parse("applications:\n- name: a\n  instances: lots\n") {
        Err(ManifestError::Structure(msg)) => {
            assert!(msg.contains("applications[0].instances"), "{msg}")
        }
        other => panic!("unexpected {other:?}"),
    }
}
