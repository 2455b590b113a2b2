//! `manifest_diff`: JSON-patch-like operations turning the current manifest of a space's
//! apps into the desired one, as `POST /v3/spaces/:guid/manifest_diff` returns them.

use serde::Serialize;
use serde_json::Value;

use crate::Manifest;

/// The kind of a [`DiffOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    Add,
    Remove,
    Replace,
}

/// One difference, e.g. `{"op":"replace","path":"/applications/0/memory","was":"1G","value":"256M"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffOp {
    pub op: DiffKind,
    /// JSON pointer into the desired manifest (`/applications/<index>/<key>/...`).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub was: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Differences between `current` (the apps as they are, e.g. from the API's manifest
/// generator) and `desired` (the pushed manifest). Apps are matched by name; only keys the
/// desired manifest mentions are compared, because applying a manifest never removes what it
/// does not mention. Maps are compared key by key (so one env var change is one op); lists
/// and scalars are replaced whole. A removal appears only when the desired value is `null`
/// (e.g. `command: null`) and the current one is not.
pub fn diff(current: &Manifest, desired: &Manifest) -> Vec<DiffOp> {
    let mut ops = Vec::new();
    for (index, app) in desired.applications.iter().enumerate() {
        let want = serde_json::to_value(app).unwrap_or(Value::Null);
        let have = current
            .applications
            .iter()
            .find(|a| a.name == app.name)
            .and_then(|a| serde_json::to_value(a).ok())
            .unwrap_or_else(|| Value::Object(Default::default()));
        compare(&format!("/applications/{index}"), &have, &want, &mut ops);
    }
    ops
}

fn compare(path: &str, have: &Value, want: &Value, ops: &mut Vec<DiffOp>) {
    let (Value::Object(have_map), Value::Object(want_map)) = (have, want) else {
        if have != want {
            ops.push(DiffOp {
                op: DiffKind::Replace,
                path: path.to_string(),
                was: Some(have.clone()),
                value: Some(want.clone()),
            });
        }
        return;
    };
    for (key, want_value) in want_map {
        let child = format!("{path}/{}", escape(key));
        match (have_map.get(key), want_value) {
            (None | Some(Value::Null), Value::Null) => {}
            (Some(old), Value::Null) => ops.push(DiffOp {
                op: DiffKind::Remove,
                path: child,
                was: Some(old.clone()),
                value: None,
            }),
            (None, new) => ops.push(DiffOp {
                op: DiffKind::Add,
                path: child,
                was: None,
                value: Some(new.clone()),
            }),
            (Some(old), new) => compare(&child, old, new, ops),
        }
    }
}

/// JSON-pointer escaping of one segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
