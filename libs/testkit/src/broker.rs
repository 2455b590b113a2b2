//! A service broker for tests speaking the Open Service Broker API v2.17 over HTTP with basic
//! auth. Its catalog has one service, `test-db`, whose plans behave each in one way:
//!
//! - `sync`: provision, update, bind and deprovision answer at once.
//! - `async`: provision, update, deprovision and bind answer 202 with an operation;
//!   `last_operation` is `in progress` for two polls (with `Retry-After: 1`), then `succeeded`
//!   (a binding's credentials are then at `GET .../service_bindings/:id`).
//! - `fail-500`: provision keeps the instance half-made and answers 500 (the platform must
//!   send a deprovision: orphan mitigation).
//! - `slow`: provision keeps the instance and answers after [`SLOW_SECS`].
//! - `bad-json`: provision keeps the instance and answers 201 with a body that is not JSON.
//! - `concurrency`: provision answers 422 `ConcurrencyError`.
//! - `async-fails`: provision answers 202; `last_operation` ends `failed` with a description,
//!   and the broker drops the instance.
//!
//! Every plan has `maintenance_info` (version [`FIRST_VERSION`] until a test sets another
//! with `POST /test/catalog {"version": ..., "drop": [plan names]}`, which also takes plans
//! out of the catalog); provisions and updates that send another version than the catalog's
//! get 422 `MaintenanceInfoConflict`, and each instance records the version it runs.
//!
//! What it holds is at `GET /test/state` (instances, bindings and every request's method, path
//! and OSBAPI headers), so a test can check that nothing is left behind. Under the path prefix
//! `/broken` the catalog answers 500 with a description.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The service's catalog id and name.
pub const SERVICE_ID: &str = "test-db-service";
pub const SERVICE_NAME: &str = "test-db";
/// Seconds the `slow` plan takes to answer a provision.
pub const SLOW_SECS: u64 = 30;
/// The plans, by name (their catalog ids are `plan-<name>`).
pub const PLANS: [&str; 7] =
    ["sync", "async", "fail-500", "slow", "bad-json", "concurrency", "async-fails"];
/// The plans' `maintenance_info` version until a test changes it.
pub const FIRST_VERSION: &str = "1.0.0";
/// Polls of `last_operation` that answer `in progress` before an async operation ends.
const POLLS: u32 = 2;

#[derive(Debug, Clone)]
struct Instance {
    plan: String,
    parameters: Value,
    /// The `maintenance_info.version` it runs ('' when none was sent).
    version: String,
    /// The running operation: its kind (`provision`, `update`, `deprovision`) and polls left.
    op: Option<(String, u32)>,
}

#[derive(Debug, Default)]
struct State {
    instances: BTreeMap<String, Instance>,
    bindings: BTreeMap<String, (String, Value)>,
    /// Bindings being made asynchronously: polls left.
    binding_ops: BTreeMap<String, u32>,
    requests: Vec<Value>,
    /// The catalog's `maintenance_info` version ('' : [`FIRST_VERSION`]) and the plans it
    /// no longer lists.
    version: String,
    dropped: Vec<String>,
}

impl State {
    fn version(&self) -> &str {
        if self.version.is_empty() {
            FIRST_VERSION
        } else {
            &self.version
        }
    }
}

type Shared = Arc<Mutex<State>>;

/// Serve on `listener` with basic auth `user`/`password` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, user: String, password: String) {
    let state: Shared = Arc::default();
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{user}:{password}")
        )
    );
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (state, expected) = (state.clone(), expected.clone());
            async move { handle(&state, &expected, method, uri, headers, body).await }
        },
    );
    let _ = axum::serve(listener, app).await;
}

/// Start in this process on a free port; its base URL.
pub async fn start(user: &str, password: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(serve(listener, user.to_owned(), password.to_owned()));
    format!("http://127.0.0.1:{port}")
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| v.to_owned())
        })
    })
}

fn plan_name(plan_id: &str) -> String {
    plan_id.strip_prefix("plan-").unwrap_or(plan_id).to_owned()
}

fn catalog(st: &State) -> Value {
    let version = st.version();
    let plans: Vec<Value> = PLANS
        .iter()
        .filter(|p| !st.dropped.iter().any(|d| d == *p))
        .map(|p| {
            json!({
                "id": format!("plan-{p}"), "name": p,
                "description": format!("The {p} plan"), "free": *p != "sync",
                "metadata": {"displayName": p,
                             "costs": [{"amount": {"usd": 9.5, "eur": 9.0}, "unit": "MONTHLY"}]},
                "maintenance_info": {"version": version,
                                     "description": format!("Test DB engine {version}")},
            })
        })
        .collect();
    json!({"services": [{
        "id": SERVICE_ID, "name": SERVICE_NAME,
        "description": "A database for tests",
        "bindable": true, "plan_updateable": true, "instances_retrievable": true,
        "bindings_retrievable": true, "tags": ["test", "db"],
        "metadata": {"displayName": "Test DB", "shareable": true},
        "plans": plans,
    }]})
}

async fn handle(
    state: &Shared,
    expected: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let path = uri.path().to_owned();
    if path == "/test/state" {
        let st = state.lock().expect("lock");
        let instances: BTreeMap<&String, Value> = st
            .instances
            .iter()
            .map(|(k, i)| {
                (k, json!({"plan": i.plan, "parameters": i.parameters, "version": i.version}))
            })
            .collect();
        let bindings: BTreeMap<&String, Value> = st
            .bindings
            .iter()
            .map(|(k, (i, p))| (k, json!({"instance_id": i, "parameters": p})))
            .collect();
        return answer(
            StatusCode::OK,
            json!({"instances": instances, "bindings": bindings, "requests": st.requests}),
        );
    }
    if path == "/test/catalog" && method == Method::POST {
        let req: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
        let mut st = state.lock().expect("lock");
        if let Some(v) = req.get("version").and_then(Value::as_str) {
            v.clone_into(&mut st.version);
        }
        if let Some(d) = req.get("drop").and_then(Value::as_array) {
            st.dropped = d.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        }
        return answer(StatusCode::OK, json!({}));
    }
    state.lock().expect("lock").requests.push(json!({
        "method": method.as_str(), "path": uri.to_string(),
        "api_version": h("x-broker-api-version"),
        "originating_identity": h("x-broker-api-originating-identity"),
    }));
    if h("authorization") != expected {
        return answer(StatusCode::UNAUTHORIZED, json!({"description": "Bad credentials"}));
    }
    if h("x-broker-api-version").is_empty() {
        return answer(
            StatusCode::PRECONDITION_FAILED,
            json!({"description": "X-Broker-API-Version is required"}),
        );
    }
    let (broken, path) = match path.strip_prefix("/broken") {
        Some(rest) => (true, rest.to_owned()),
        None => (false, path),
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return answer(StatusCode::BAD_REQUEST, json!({"description": e.to_string()}))
            }
        }
    };
    let incomplete = query_param(&uri, "accepts_incomplete").as_deref() == Some("true");
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["v2", "catalog"]) if broken => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"description": "The catalog is being rebuilt"}),
        ),
        ("GET", ["v2", "catalog"]) => answer(StatusCode::OK, catalog(&state.lock().expect("lock"))),
        ("PUT", ["v2", "service_instances", id]) => provision(state, id, &req, incomplete).await,
        ("PATCH", ["v2", "service_instances", id]) => update(state, id, &req, incomplete),
        ("DELETE", ["v2", "service_instances", id]) => deprovision(state, id, incomplete),
        ("GET", ["v2", "service_instances", id]) => {
            let st = state.lock().expect("lock");
            match st.instances.get(*id) {
                Some(i) => answer(
                    StatusCode::OK,
                    json!({"service_id": SERVICE_ID, "plan_id": format!("plan-{}", i.plan),
                           "parameters": i.parameters}),
                ),
                None => answer(StatusCode::NOT_FOUND, json!({})),
            }
        }
        ("GET", ["v2", "service_instances", id, "last_operation"]) => last_operation(state, id),
        ("PUT", ["v2", "service_instances", id, "service_bindings", bid]) => {
            let mut st = state.lock().expect("lock");
            if !st.instances.contains_key(*id) {
                return answer(StatusCode::NOT_FOUND, json!({"description": "No such instance"}));
            }
            let params = req.get("parameters").cloned().unwrap_or_else(|| json!({}));
            let asynchronous = st.instances.get(*id).is_some_and(|i| i.plan == "async");
            let existed = st.bindings.insert((*bid).to_owned(), ((*id).to_owned(), params));
            if asynchronous && incomplete {
                st.binding_ops.insert((*bid).to_owned(), POLLS);
                return answer(StatusCode::ACCEPTED, json!({"operation": format!("bind-{bid}")}));
            }
            let code = if existed.is_some() { StatusCode::OK } else { StatusCode::CREATED };
            answer(
                code,
                json!({"credentials": {"uri": format!("testdb://u-{bid}:secret@db.test/{id}")}}),
            )
        }
        ("GET", ["v2", "service_instances", _, "service_bindings", bid, "last_operation"]) => {
            let mut st = state.lock().expect("lock");
            if !st.bindings.contains_key(*bid) {
                return answer(StatusCode::GONE, json!({}));
            }
            let left = st.binding_ops.get(*bid).copied().unwrap_or(0);
            let body = if left > 0 {
                st.binding_ops.insert((*bid).to_owned(), left - 1);
                json!({"state": "in progress", "description": format!("bind: {left} steps to go")})
            } else {
                st.binding_ops.remove(*bid);
                json!({"state": "succeeded"})
            };
            let mut res = answer(StatusCode::OK, body);
            res.headers_mut().insert("retry-after", "1".parse().expect("value"));
            res
        }
        ("GET", ["v2", "service_instances", id, "service_bindings", bid]) => {
            let st = state.lock().expect("lock");
            if st.binding_ops.contains_key(*bid) {
                return answer(
                    StatusCode::NOT_FOUND,
                    json!({"description": "Binding in progress"}),
                );
            }
            match st.bindings.get(*bid) {
                Some((i, p)) if i == id => answer(
                    StatusCode::OK,
                    json!({"credentials": {"uri": format!("testdb://u-{bid}:secret@db.test/{id}")},
                           "parameters": p}),
                ),
                _ => answer(StatusCode::NOT_FOUND, json!({})),
            }
        }
        ("DELETE", ["v2", "service_instances", _, "service_bindings", bid]) => {
            let gone = state.lock().expect("lock").bindings.remove(*bid).is_none();
            answer(if gone { StatusCode::GONE } else { StatusCode::OK }, json!({}))
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"description": "Unknown path"})),
    }
}

fn instance(req: &Value) -> Instance {
    let plan = plan_name(req.get("plan_id").and_then(Value::as_str).unwrap_or(""));
    let parameters = req.get("parameters").cloned().unwrap_or_else(|| json!({}));
    Instance { plan, parameters, version: sent_version(req).unwrap_or_default(), op: None }
}

fn sent_version(req: &Value) -> Option<String> {
    req.pointer("/maintenance_info/version").and_then(Value::as_str).map(str::to_owned)
}

/// 422 `MaintenanceInfoConflict` when a request sends another version than the catalog's.
fn version_conflict(st: &State, req: &Value) -> Option<Response> {
    let sent = sent_version(req)?;
    (sent != st.version()).then(|| {
        answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "MaintenanceInfoConflict",
                   "description": format!("Version {sent} is not the catalog's {}", st.version())}),
        )
    })
}

async fn provision(state: &Shared, id: &str, req: &Value, incomplete: bool) -> Response {
    let mut i = instance(req);
    if req.get("service_id").and_then(Value::as_str) != Some(SERVICE_ID)
        || !PLANS.contains(&i.plan.as_str())
    {
        return answer(StatusCode::BAD_REQUEST, json!({"description": "Unknown service or plan"}));
    }
    let asynchronous = matches!(i.plan.as_str(), "async" | "async-fails");
    if asynchronous && !incomplete {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "AsyncRequired", "description": "This plan needs accepts_incomplete"}),
        );
    }
    if i.plan == "concurrency" {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "ConcurrencyError",
                   "description": "Another operation for this service instance is in progress"}),
        );
    }
    if asynchronous {
        i.op = Some(("provision".into(), POLLS));
    }
    let plan = i.plan.clone();
    {
        let mut st = state.lock().expect("lock");
        if let Some(conflict) = version_conflict(&st, req) {
            return conflict;
        }
        if st.instances.contains_key(id) {
            return answer(StatusCode::CONFLICT, json!({"description": "Instance exists"}));
        }
        st.instances.insert(id.to_owned(), i);
    }
    match plan.as_str() {
        "async" | "async-fails" => {
            answer(StatusCode::ACCEPTED, json!({"operation": format!("provision-{id}")}))
        }
        "fail-500" => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"description": "The database server could not be reached"}),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(SLOW_SECS)).await;
            answer(StatusCode::CREATED, json!({}))
        }
        "bad-json" => (StatusCode::CREATED, "{this is not json").into_response(),
        _ => answer(StatusCode::CREATED, json!({"dashboard_url": format!("http://db.test/{id}")})),
    }
}

fn update(state: &Shared, id: &str, req: &Value, incomplete: bool) -> Response {
    let mut st = state.lock().expect("lock");
    if let Some(conflict) = version_conflict(&st, req) {
        return conflict;
    }
    let Some(i) = st.instances.get_mut(id) else {
        return answer(StatusCode::NOT_FOUND, json!({"description": "No such instance"}));
    };
    if let Some(p) = req.get("plan_id").and_then(Value::as_str) {
        i.plan = plan_name(p);
    }
    if let Some(p) = req.get("parameters") {
        i.parameters = p.clone();
    }
    if let Some(v) = sent_version(req) {
        i.version = v;
    }
    if i.plan == "async" && incomplete {
        i.op = Some(("update".into(), POLLS));
        return answer(StatusCode::ACCEPTED, json!({"operation": format!("update-{id}")}));
    }
    answer(StatusCode::OK, json!({}))
}

fn deprovision(state: &Shared, id: &str, incomplete: bool) -> Response {
    let mut st = state.lock().expect("lock");
    let Some(i) = st.instances.get_mut(id) else {
        return answer(StatusCode::GONE, json!({}));
    };
    if i.plan == "async" && incomplete {
        i.op = Some(("deprovision".into(), POLLS));
        return answer(StatusCode::ACCEPTED, json!({"operation": format!("deprovision-{id}")}));
    }
    st.instances.remove(id);
    st.bindings.retain(|_, (inst, _)| inst != id);
    answer(StatusCode::OK, json!({}))
}

fn last_operation(state: &Shared, id: &str) -> Response {
    let mut st = state.lock().expect("lock");
    let Some(i) = st.instances.get_mut(id) else {
        return answer(StatusCode::GONE, json!({}));
    };
    let Some((kind, left)) = i.op.clone() else {
        return answer(StatusCode::OK, json!({"state": "succeeded"}));
    };
    let body = if left > 0 {
        i.op = Some((kind.clone(), left - 1));
        json!({"state": "in progress", "description": format!("{kind}: {left} steps to go")})
    } else if i.plan == "async-fails" {
        st.instances.remove(id);
        json!({"state": "failed", "description": "Out of capacity: no database server is free"})
    } else if kind == "deprovision" {
        st.instances.remove(id);
        st.bindings.retain(|_, (inst, _)| inst != id);
        json!({"state": "succeeded", "description": "Deleted"})
    } else {
        i.op = None;
        json!({"state": "succeeded", "description": format!("{kind} done")})
    };
    let mut res = answer(StatusCode::OK, body);
    res.headers_mut().insert("retry-after", "1".parse().expect("value"));
    res
}
