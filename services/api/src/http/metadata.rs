//! Labels and annotations on every v3 resource, in one place: a middleware validates
//! `metadata` in JSON request bodies before the handler runs (a bad label changes nothing),
//! stores it on the resource the handler answered with, and fills `metadata` of every resource
//! in a JSON response; `label_selector` on lists becomes a subquery.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::store::Select;
use crate::AppState;

const MAX_BODY: usize = 16 << 20;

/// `prefix/name`: prefix a DNS name (≤ 253), name ≤ 63 of alphanumerics and `-_.`, starting
/// and ending alphanumeric.
fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    });
    name_ok && prefix_ok
}

fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// `(kind, key, Some(value) | None = delete)` entries of a request's `metadata`.
pub fn parse(v: &Value) -> ApiResult<Vec<(&'static str, String, Option<String>)>> {
    let mut out = Vec::new();
    let Some(obj) = v.as_object() else {
        return Err(ApiError::Unprocessable("Metadata must be an object".into()));
    };
    for (field, kind) in [("labels", "label"), ("annotations", "annotation")] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, val) in m {
                    if !valid_key(k) {
                        return Err(ApiError::Unprocessable(format!(
                            "Metadata {field} key error: '{k}' is not a valid key"
                        )));
                    }
                    let value = match val {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => {
                            return Err(ApiError::Unprocessable(format!(
                            "Metadata {field} value of '{k}' must be a string or null, not {other}"
                        )))
                        }
                    };
                    if let Some(s) = &value {
                        let ok =
                            if kind == "label" { valid_label_value(s) } else { s.len() <= 5000 };
                        if !ok {
                            return Err(ApiError::Unprocessable(format!("Metadata {field} value error: '{s}' is not a valid value for '{k}'")));
                        }
                    }
                    out.push((kind, k.clone(), value));
                }
            }
            Some(_) => {
                return Err(ApiError::Unprocessable(format!("Metadata {field} must be an object")))
            }
        }
    }
    Ok(out)
}

async fn store(
    s: &AppState,
    guid: &str,
    entries: &[(&'static str, String, Option<String>)],
) -> ApiResult<()> {
    let mut tx = crate::store::begin(&s.db).await?;
    crate::store::metadata::put(&mut tx, guid, entries).await?;
    Ok(tx.commit().await?)
}

/// Metadata of each guid (absent guids have none).
async fn load(s: &AppState, guids: &[String]) -> ApiResult<HashMap<String, Value>> {
    let mut out: HashMap<String, Value> = HashMap::new();
    if guids.is_empty() {
        return Ok(out);
    }
    for (guid, (kind, key, value)) in crate::store::metadata::of(&s.db, guids).await? {
        let entry = out.entry(guid).or_insert_with(|| json!({"labels": {}, "annotations": {}}));
        let field = if kind == "label" { "labels" } else { "annotations" };
        entry[field][key] = json!(value);
    }
    Ok(out)
}

/// Every object of the response that has a `guid` and a `metadata` field.
fn collect<'a>(v: &'a mut Value, out: &mut Vec<&'a mut Map<String, Value>>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("guid") && m.contains_key("metadata") {
                out.push(m);
                return;
            }
            for (_, child) in m.iter_mut() {
                collect(child, out);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| collect(c, out)),
        _ => {}
    }
}

async fn fill(s: &AppState, body: &mut Value) -> ApiResult<()> {
    let mut objs = Vec::new();
    collect(body, &mut objs);
    let guids: Vec<String> =
        objs.iter().filter_map(|m| m["guid"].as_str().map(str::to_owned)).collect();
    let found = load(s, &guids).await?;
    for m in objs {
        if let Some(md) = m["guid"].as_str().and_then(|g| found.get(g)) {
            m.insert("metadata".into(), md.clone());
        }
    }
    Ok(())
}

fn is_json(h: &axum::http::HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The middleware on the public v3 routes.
pub async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match handle(&s, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(s: &AppState, req: Request, next: Next) -> ApiResult<Response> {
    if !req.uri().path().starts_with("/v3/") {
        return Ok(next.run(req).await);
    }
    let writes = matches!(*req.method(), Method::POST | Method::PATCH) && is_json(req.headers());
    let mut entries = Vec::new();
    let req = if writes {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ApiError::BadRequest("request body too large".into()))?;
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            if let Some(md) = v.get("metadata").filter(|m| !m.is_null()) {
                entries = parse(md)?;
            }
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let res = next.run(req).await;
    let json_out = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_out || !res.status().is_success() {
        return Ok(res);
    }
    let (mut parts, body) = res.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    };
    if !entries.is_empty() {
        if let Some(g) = v.get("guid").and_then(Value::as_str) {
            store(s, g, &entries).await?;
        }
    }
    fill(s, &mut v).await?;
    let out = serde_json::to_vec(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Body::from(out)))
}

/// The body of a `PATCH` that changes only labels and annotations (routes, domains, stacks,
/// packages, builds, droplets): `metadata` and nothing else; the layer stores it.
pub fn only_metadata(body: &Value) -> ApiResult<()> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::Unprocessable("The request body must be an object".into()));
    };
    let unknown: Vec<String> =
        obj.keys().filter(|k| *k != "metadata").map(|k| format!("'{k}'")).collect();
    if !unknown.is_empty() {
        return Err(ApiError::Unprocessable(format!("Unknown field(s): {}", unknown.join(", "))));
    }
    Ok(())
}

/// One requirement of a `label_selector`.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

fn parse_selector(sel: &str) -> ApiResult<Vec<Req>> {
    let bad = || ApiError::BadQuery(format!("Invalid label_selector value: '{sel}'"));
    let mut reqs = Vec::new();
    let mut rest = sel.trim();
    while !rest.is_empty() {
        // A requirement ends at the next comma outside parentheses.
        let mut depth = 0;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let r = rest[..end].trim();
        rest = rest[end..].trim_start_matches(',').trim();
        let set = |s: &str| -> Vec<String> {
            s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect()
        };
        let req = if let Some(k) = r.strip_prefix('!') {
            Req::Absent(k.trim().to_owned())
        } else if let Some((k, v)) = r.split_once("!=") {
            Req::NotIn(k.trim().to_owned(), vec![v.trim().to_owned()])
        } else if let Some((k, v)) = r.split_once("==").or_else(|| r.split_once('=')) {
            Req::In(k.trim().to_owned(), vec![v.trim().to_owned()])
        } else if let Some((k, v)) = r.split_once(" notin ") {
            Req::NotIn(
                k.trim().to_owned(),
                set(v
                    .trim()
                    .strip_prefix('(')
                    .and_then(|x| x.strip_suffix(')'))
                    .ok_or_else(bad)?),
            )
        } else if let Some((k, v)) = r.split_once(" in ") {
            Req::In(
                k.trim().to_owned(),
                set(v
                    .trim()
                    .strip_prefix('(')
                    .and_then(|x| x.strip_suffix(')'))
                    .ok_or_else(bad)?),
            )
        } else {
            Req::Exists(r.to_owned())
        };
        let key = match &req {
            Req::Exists(k) | Req::Absent(k) | Req::In(k, _) | Req::NotIn(k, _) => k,
        };
        if !valid_key(key) {
            return Err(bad());
        }
        reqs.push(req);
    }
    if reqs.is_empty() || reqs.len() > 50 {
        return Err(bad());
    }
    Ok(reqs)
}

/// Restrict `sel` (whose rows have `column` as guid) by the query's `label_selector`.
pub fn select(sel: &mut Select, q: &crate::http::paging::ListQuery, column: &str) -> ApiResult<()> {
    let Some(values) = q.filter("label_selector") else { return Ok(()) };
    let joined = values.join(",");
    for r in parse_selector(&joined)? {
        let (neg, key, vals) = match r {
            Req::Exists(k) => (false, k, None),
            Req::Absent(k) => (true, k, None),
            Req::In(k, v) => (false, k, Some(v)),
            Req::NotIn(k, v) => (true, k, Some(v)),
        };
        sel.label(column, neg, &key, vals.as_deref());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_follow_cf_rules() {
        assert!(valid_key("env"));
        assert!(valid_key("example.com/team"));
        assert!(!valid_key("-bad"));
        assert!(!valid_key("a/b/"));
        assert!(!valid_key(&"x".repeat(64)));
        assert!(valid_label_value("prod-1"));
        assert!(!valid_label_value("has space"));
        let bad = parse(&json!({"labels": {"ok": 3}}));
        assert!(bad.is_err());
        let good = parse(&json!({"labels": {"env": "prod", "gone": null}, "annotations": {"note": "any text at all"}})).expect("valid");
        assert_eq!(good.len(), 3);
    }

    #[test]
    fn selectors_parse_every_form() {
        let r = parse_selector("env=prod,!legacy,tier in (web, api),zone notin (a),team!=ops,x")
            .expect("parse");
        assert_eq!(r.len(), 6);
        assert_eq!(r[2], Req::In("tier".into(), vec!["web".into(), "api".into()]));
        assert!(parse_selector("tier in web").is_err());
        assert!(parse_selector("").is_err());
    }
}
