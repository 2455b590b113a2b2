//! `diff` for manifest_diff.

use manifest::{diff, parse, DiffKind};
use serde_json::json;

#[test]
fn replace_add_remove_and_new_app() {
    let current = parse("applications:\n- name: a\n  memory: 1G\n  instances: 1\n  command: old\n  env: {A: '1', B: '2'}\n  stack: s\n").expect("current");
    let desired = parse("applications:\n- name: b\n  memory: 256M\n- name: a\n  memory: 256M\n  instances: 1\n  command: null\n  env: {A: '9', C: '3'}\n").expect("desired");
    let ops = diff(&current, &desired);
    let rendered = serde_json::to_value(&ops).expect("json");
    assert_eq!(
        rendered,
        json!([
            {"op": "add", "path": "/applications/0/memory", "value": "256M"},
            {"op": "add", "path": "/applications/0/name", "value": "b"},
            {"op": "remove", "path": "/applications/1/command", "was": "old"},
            {"op": "replace", "path": "/applications/1/env/A", "was": "1", "value": "9"},
            {"op": "add", "path": "/applications/1/env/C", "value": "3"},
            {"op": "replace", "path": "/applications/1/memory", "was": "1G", "value": "256M"},
        ])
    );
    assert!(
        ops.iter().all(|o| o.path != "/applications/1/stack"),
        "unmentioned keys are not removed"
    );
    assert_eq!(ops[2].op, DiffKind::Remove);
}

#[test]
fn identical_manifests_have_no_diff() {
    let m = parse("applications:\n- name: a\n  routes:\n  - route: a.example.com\n").expect("m");
    assert!(diff(&m, &m).is_empty());
    let other =
        parse("applications:\n- name: a\n  routes:\n  - route: b.example.com\n").expect("o");
    let ops = diff(&m, &other);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].path, "/applications/0/routes");
}
