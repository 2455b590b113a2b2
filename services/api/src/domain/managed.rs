//! Managed service instances and their bindings through the instance's broker (OSBAPI v2):
//! provision, update and deprovision, bind and unbind, each answered at once or accepted and
//! then polled (`last_operation`, honouring `Retry-After`, backing off up to 30 s, for at
//! most `broker_max_poll_secs`). Every step is written to the instance's or binding's last
//! operation, so users read the broker's words. When a provision or bind fails in a way that
//! may have left something at the broker (no answer, a 5xx, a body that does not parse), the
//! platform asks the broker to remove it (orphan mitigation).
//!
//! These run as the work of jobs (`domain::jobs::spawn`), on the api's task tracker which
//! shutdown drains.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::domain::osb::{self, Answer};
use crate::error::{ApiError, ApiResult};
use crate::store::brokers::{Broker, Offering, Plan};
use crate::store::services::{Binding, Instance, Operation};
use crate::store::{self, now_ms};
use crate::AppState;

/// What a managed instance's broker calls need: the broker, the offering and the plan.
#[derive(Debug, Clone)]
pub struct Target {
    pub broker: Broker,
    pub offering: Offering,
    pub plan: Plan,
}

impl Target {
    pub async fn of_plan(s: &AppState, plan: &str) -> ApiResult<Self> {
        let missing = || ApiError::Internal(format!("plan {plan} has no offering or broker"));
        let plan = store::brokers::find_plan(&s.db.pool, plan).await?.ok_or_else(missing)?;
        let offering = store::brokers::find_offering(&s.db.pool, &plan.offering_guid)
            .await?
            .ok_or_else(missing)?;
        let broker = store::brokers::find_broker(&s.db.pool, &offering.broker_guid)
            .await?
            .ok_or_else(missing)?;
        Ok(Self { broker, offering, plan })
    }

    fn ids(&self) -> [(&'static str, &str); 2] {
        [("service_id", &self.offering.catalog_id), ("plan_id", &self.plan.catalog_id)]
    }
}

fn op(kind: &str, state: &str, description: &str, broker_operation: &str) -> Operation {
    Operation {
        kind: kind.into(),
        state: state.into(),
        description: description.into(),
        broker_operation: broker_operation.into(),
        updated_at: now_ms(),
    }
}

/// The OSBAPI `context` of an instance.
fn context(i: &Instance, org: &str) -> Value {
    json!({"platform": "cloudfoundry", "organization_guid": org, "space_guid": i.space_guid,
           "instance_name": i.name})
}

/// An instance whose last operation a poll keeps up to date: its guid and the operation's
/// type.
type Noted<'a> = Option<(&'a str, &'a str)>;

/// Poll `last_operation` at `path` until the operation ends; each `in progress` description
/// is written to the `noted` instance's last operation. `Ok(description)` when it succeeded
/// (or is gone, for a delete).
async fn poll(
    s: &AppState,
    broker: &Broker,
    path: &str,
    operation: &str,
    query: &[(&str, &str)],
    noted: Noted<'_>,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(s.config.broker_max_poll_secs.max(1));
    let mut wait = Duration::from_secs(1);
    loop {
        tokio::time::sleep(wait).await;
        match osb::last_operation(s, broker, path, operation, query).await {
            Ok(p) => match p.state.as_str() {
                "succeeded" | "gone" => return Ok(p.description),
                "failed" => {
                    return Err(if p.description.is_empty() {
                        "The service broker reported the operation failed".into()
                    } else {
                        p.description
                    })
                }
                _ => {
                    if let Some((guid, kind)) = noted {
                        let o = op(kind, "in progress", &p.description, operation);
                        let _ = store::services::set_operation(&s.db.pool, guid, &o).await;
                    }
                    wait = p.retry_after.unwrap_or((wait * 2).min(Duration::from_secs(30)));
                }
            },
            // A broker that refuses the poll itself (4xx) will not answer it later either.
            Err(f @ osb::Failure::Rejected { .. }) => return Err(f.describe(&broker.name)),
            // A broker that fails to answer a poll is asked again later.
            Err(f) => {
                tracing::warn!(broker = %broker.name, error = %f.describe(&broker.name), "last_operation poll failed");
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
        if Instant::now() + wait > deadline {
            return Err(format!(
                "The service broker did not finish the operation within {} seconds",
                s.config.broker_max_poll_secs
            ));
        }
    }
}

fn instance_path(guid: &str) -> String {
    format!("/v2/service_instances/{guid}")
}

/// Tell the broker to remove what a failed provision may have left (orphan mitigation);
/// a failure is only logged.
async fn mitigate_instance(s: &AppState, t: &Target, guid: &str) {
    let q = t.ids();
    let path = instance_path(guid);
    match osb::instance_op(s, &t.broker, Method::DELETE, &path, &q, None, "").await {
        Ok(Answer::Accepted(o)) => {
            let _ = poll(s, &t.broker, &path, o.as_deref().unwrap_or(""), &q, None).await;
        }
        Ok(_) => {}
        Err(f) => {
            tracing::warn!(instance = guid, error = %f.describe(&t.broker.name), "orphan mitigation failed")
        }
    }
}

/// Run a create, update or delete at the broker and record it as the instance's last
/// operation; the failure (recorded too) fails the job with the broker's words.
async fn run_instance_op(
    s: &AppState,
    i: &Instance,
    t: &Target,
    kind: &str,
    method: Method,
    body: Option<&Value>,
    user: &str,
) -> ApiResult<Option<Value>> {
    let guid = i.guid.clone();
    let path = instance_path(&guid);
    let query: Vec<(&str, &str)> =
        if method == Method::DELETE { t.ids().to_vec() } else { Vec::new() };
    match osb::instance_op(s, &t.broker, method, &path, &query, body, user).await {
        Ok(Answer::Done(v)) => Ok(Some(v)),
        Ok(Answer::Gone) => Ok(None),
        Ok(Answer::Accepted(o)) => {
            let o = o.unwrap_or_default();
            store::services::set_operation(&s.db.pool, &guid, &op(kind, "in progress", "", &o))
                .await?;
            match poll(s, &t.broker, &path, &o, &query, Some((&guid, kind))).await {
                Ok(_) => Ok(None),
                Err(description) => fail(s, &guid, kind, description).await,
            }
        }
        Err(f) => {
            let description = f.describe(&t.broker.name);
            if kind == "create" && f.needs_cleanup() {
                mitigate_instance(s, t, &guid).await;
            }
            fail(s, &guid, kind, description).await
        }
    }
}

/// Record a failed operation; the job fails with the same words.
async fn fail(
    s: &AppState,
    guid: &str,
    kind: &str,
    description: String,
) -> ApiResult<Option<Value>> {
    store::services::set_operation(&s.db.pool, guid, &op(kind, "failed", &description, "")).await?;
    Err(ApiError::Broker(description))
}

/// The plan's `maintenance_info` as OSBAPI sends it (`None`: the plan has none).
pub fn maintenance_info(p: &Plan) -> Option<Value> {
    p.extra.get("maintenance_info").filter(|m| m.get("version").is_some()).cloned()
}

/// Provision a new instance (its row is there, last operation `create in progress`).
pub async fn provision(
    s: &AppState,
    i: &Instance,
    t: &Target,
    org: &str,
    user: &str,
) -> ApiResult<()> {
    let mut body = json!({
        "service_id": t.offering.catalog_id, "plan_id": t.plan.catalog_id,
        "organization_guid": org, "space_guid": i.space_guid,
        "parameters": i.parameters, "context": context(i, org),
    });
    if let Some(m) = maintenance_info(&t.plan) {
        body["maintenance_info"] = m;
    }
    let done = run_instance_op(s, i, t, "create", Method::PUT, Some(&body), user).await?;
    let dashboard =
        done.as_ref().and_then(|v| v.get("dashboard_url")).and_then(Value::as_str).unwrap_or("");
    if !dashboard.is_empty() {
        let m = store::services::Managed {
            plan: &i.plan_guid,
            parameters: &i.parameters,
            dashboard_url: dashboard,
            maintenance_info: &i.maintenance_info,
        };
        store::services::set_managed(&s.db.pool, &i.guid, m, now_ms()).await?;
    }
    store::services::set_operation(&s.db.pool, &i.guid, &op("create", "succeeded", "", "")).await
}

/// What an update asks of the broker: another plan, new parameters, an upgrade to the
/// plan's `maintenance_info`.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub plan: Option<Plan>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
}

/// Change an instance's plan, parameters or version at the broker; kept only when it
/// succeeds. A new plan brings its own `maintenance_info`.
pub async fn update(
    s: &AppState,
    i: &Instance,
    t: &Target,
    change: &Change,
    org: &str,
    user: &str,
) -> ApiResult<()> {
    let mut previous = json!({"plan_id": t.plan.catalog_id, "service_id": t.offering.catalog_id,
                              "organization_id": org, "space_id": i.space_guid});
    if i.maintenance_info.get("version").is_some() {
        previous["maintenance_info"] = i.maintenance_info.clone();
    }
    let mut body = json!({
        "service_id": t.offering.catalog_id,
        "previous_values": previous,
        "context": context(i, org),
    });
    let mut version = i.maintenance_info.clone();
    if let Some(p) = &change.plan {
        body["plan_id"] = json!(p.catalog_id);
        version = maintenance_info(p).unwrap_or_else(|| json!({}));
    }
    if let Some(m) = &change.maintenance_info {
        version = m.clone();
    }
    if version.get("version").is_some() && version != i.maintenance_info {
        body["maintenance_info"] = version.clone();
    }
    if let Some(p) = &change.parameters {
        body["parameters"] = p.clone();
    }
    run_instance_op(s, i, t, "update", Method::PATCH, Some(&body), user).await?;
    let m = store::services::Managed {
        plan: change.plan.as_ref().map_or(i.plan_guid.as_str(), |p| p.guid.as_str()),
        parameters: change.parameters.as_ref().unwrap_or(&i.parameters),
        dashboard_url: &i.dashboard_url,
        maintenance_info: &version,
    };
    store::services::set_managed(&s.db.pool, &i.guid, m, now_ms()).await?;
    store::services::set_operation(&s.db.pool, &i.guid, &op("update", "succeeded", "", "")).await
}

/// Unbind everything bound to the instance, deprovision it and remove it.
pub async fn deprovision(s: &AppState, i: &Instance, t: &Target, user: &str) -> ApiResult<()> {
    for b in store::services::bindings_of(&s.db.pool, &i.guid).await? {
        unbind(s, &b, i, t, user).await?;
    }
    run_instance_op(s, i, t, "delete", Method::DELETE, None, user).await?;
    let mut tx = store::begin(&s.db).await?;
    store::services::delete_instance_rows(&mut tx, &i.guid).await?;
    tx.commit().await?;
    crate::domain::usage_events::service(s, i, "DELETED").await;
    Ok(())
}

fn binding_path(i: &str, b: &str) -> String {
    format!("/v2/service_instances/{i}/service_bindings/{b}")
}

/// Bind at the broker (the binding's row is there, `create in progress`): its credentials are
/// kept. A failure removes the binding (after orphan mitigation where the broker may hold
/// it) and fails the job with the broker's words.
pub async fn bind(
    s: &AppState,
    b: &Binding,
    i: &Instance,
    t: &Target,
    org: &str,
    user: &str,
) -> ApiResult<()> {
    let path = binding_path(&i.guid, &b.guid);
    let mut body = json!({
        "service_id": t.offering.catalog_id, "plan_id": t.plan.catalog_id,
        "parameters": b.parameters,
        "context": {"platform": "cloudfoundry", "organization_guid": org,
                    "space_guid": i.space_guid},
    });
    if !b.app_guid.is_empty() {
        body["app_guid"] = json!(b.app_guid);
        body["bind_resource"] = json!({"app_guid": b.app_guid});
    } else {
        body["bind_resource"] = json!({"credential_client_id": b.guid});
    }
    let outcome: Result<Value, (String, bool)> =
        match osb::instance_op(s, &t.broker, Method::PUT, &path, &[], Some(&body), user).await {
            Ok(Answer::Done(v)) => Ok(v),
            Ok(Answer::Gone) => Err(("The service broker answered 410 Gone".into(), false)),
            Ok(Answer::Accepted(o)) => {
                let o = o.unwrap_or_default();
                match poll(s, &t.broker, &path, &o, &t.ids(), None).await {
                    Ok(_) => osb::call(s, &t.broker, Method::GET, &path, &[], None, user)
                        .await
                        .map(|(_, v, _)| v)
                        .map_err(|f| (f.describe(&t.broker.name), true)),
                    Err(d) => Err((d, false)),
                }
            }
            Err(f) => Err((f.describe(&t.broker.name), f.needs_cleanup())),
        };
    match outcome {
        Ok(v) => {
            let creds = v.get("credentials").cloned().unwrap_or_else(|| json!({}));
            store::services::settle_binding(
                &s.db.pool,
                &b.guid,
                Some(&creds),
                &op("create", "succeeded", "", ""),
            )
            .await
        }
        Err((description, cleanup)) => {
            if cleanup {
                let _ =
                    osb::instance_op(s, &t.broker, Method::DELETE, &path, &t.ids(), None, "").await;
            }
            let mut tx = store::begin(&s.db).await?;
            store::services::delete_binding(&mut tx, &b.guid).await?;
            tx.commit().await?;
            Err(ApiError::Broker(description))
        }
    }
}

/// Unbind at the broker and remove the binding (a broker that no longer has it is fine).
pub async fn unbind(
    s: &AppState,
    b: &Binding,
    i: &Instance,
    t: &Target,
    user: &str,
) -> ApiResult<()> {
    let path = binding_path(&i.guid, &b.guid);
    let q = t.ids();
    match osb::instance_op(s, &t.broker, Method::DELETE, &path, &q, None, user).await {
        Ok(Answer::Done(_) | Answer::Gone) => {}
        Ok(Answer::Accepted(o)) => {
            poll(s, &t.broker, &path, o.as_deref().unwrap_or(""), &q, None)
                .await
                .map_err(ApiError::Broker)?;
        }
        Err(f) => {
            let d = f.describe(&t.broker.name);
            store::services::settle_binding(
                &s.db.pool,
                &b.guid,
                b.credentials.as_ref(),
                &op("delete", "failed", &d, ""),
            )
            .await?;
            return Err(ApiError::Broker(d));
        }
    }
    let mut tx = store::begin(&s.db).await?;
    store::services::delete_binding(&mut tx, &b.guid).await?;
    tx.commit().await?;
    Ok(())
}

/// Take over the service operations whose api is gone. Every operation runs in a job of the
/// api that started it; while that job runs (its api heartbeats it, [`super::jobs`]) the
/// operation is left alone, whichever api looks. Once no job runs it — its api drained, died
/// and was swept, or stopped between writing the operation and starting its job — and it has
/// not changed for `job_stale_ms`: a binding is failed (its broker call cannot be picked up
/// again; deleting it asks the broker to unbind), and an instance's operation is polled at its
/// broker to its end by a job of this api, which one conditional update makes the only api to
/// take it, and settled as the broker says (a broker that no longer knows the instance ends a
/// delete, and fails a create or update).
pub async fn take_over(s: &AppState) -> ApiResult<()> {
    const ORPHANED: &str = "The api making this binding stopped before the broker finished; \
                            delete it and bind again.";
    let now = now_ms();
    let stale = i64::try_from(s.config.job_stale_ms).unwrap_or(i64::MAX);
    let before = now.saturating_sub(stale);
    let failed = store::services::fail_orphaned_bindings(&s.db.pool, ORPHANED, now, before).await?;
    if failed > 0 {
        tracing::warn!(bindings = failed, "failed service bindings whose api stopped");
    }
    for i in store::services::orphaned(&s.db.pool, before).await? {
        if !store::services::take_over(&s.db.pool, &i.guid, i.op.updated_at, now_ms()).await? {
            continue;
        }
        tracing::info!(instance = %i.guid, operation = %i.op.kind, "taking over a service operation whose api stopped");
        let t = match Target::of_plan(s, &i.plan_guid).await {
            Ok(t) => t,
            Err(e) => {
                e.log();
                continue;
            }
        };
        let (s2, guid) = (s.clone(), i.guid.clone());
        let operation = format!("service_instance.{}", i.op.kind);
        let work = async move { settle(&s2, &i, &t).await };
        crate::domain::jobs::spawn(s, &operation, "service_instances", &guid, work).await?;
    }
    Ok(())
}

/// [`take_over`] at once and then every `job_heartbeat_ms` until `stop`.
pub async fn run_take_over(s: AppState, stop: kit::Shutdown) {
    let every = std::time::Duration::from_millis(s.config.job_heartbeat_ms.max(1));
    loop {
        if let Err(e) = take_over(&s).await {
            tracing::warn!(error = %e.detail(), "could not take over service operations whose api stopped");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Poll an instance's operation to its end and record it.
async fn settle(s: &AppState, i: &Instance, t: &Target) -> ApiResult<()> {
    let path = instance_path(&i.guid);
    let kind = i.op.kind.as_str();
    let query: Vec<(&str, &str)> = t.ids().to_vec();
    let noted = Some((i.guid.as_str(), kind));
    let outcome = poll(s, &t.broker, &path, &i.op.broker_operation, &query, noted).await;
    let gone = matches!(
        osb::last_operation(s, &t.broker, &path, &i.op.broker_operation, &query).await,
        Ok(osb::Progress { ref state, .. }) if state == "gone"
    );
    match (kind, outcome) {
        ("delete", Ok(_)) => {
            let mut tx = store::begin(&s.db).await?;
            store::services::delete_instance_rows(&mut tx, &i.guid).await?;
            tx.commit().await?;
            crate::domain::usage_events::service(s, i, "DELETED").await;
            Ok(())
        }
        (_, Ok(_)) if gone => fail(
            s,
            &i.guid,
            kind,
            "The service broker no longer knows this service instance".into(),
        )
        .await
        .map(|_| ()),
        (_, Ok(_)) => {
            store::services::set_operation(&s.db.pool, &i.guid, &op(kind, "succeeded", "", ""))
                .await
        }
        (_, Err(description)) => fail(s, &i.guid, kind, description).await.map(|_| ()),
    }
}

/// Before an app is deleted: its bindings to managed instances are unbound at their brokers
/// (a broker that fails fails the deletion, so no binding is left behind at the broker).
pub async fn unbind_app(s: &AppState, app: &str, user: &str) -> ApiResult<()> {
    for b in store::services::managed_bindings_of_app(&s.db.pool, app).await? {
        let Some(i) = store::services::find(&s.db.pool, &b.instance_guid).await? else { continue };
        let t = Target::of_plan(s, &i.plan_guid).await?;
        unbind(s, &b, &i, &t, user).await?;
    }
    Ok(())
}

/// Before a space is deleted: its managed instances are unbound and deprovisioned at their
/// brokers (a broker that fails fails the deletion).
pub async fn deprovision_space(s: &AppState, space: &str, user: &str) -> ApiResult<()> {
    // The space's apps bound to instances shared in from other spaces are unbound first.
    for b in store::services::managed_bindings_of_space_apps(&s.db.pool, space).await? {
        let Some(i) = store::services::find(&s.db.pool, &b.instance_guid).await? else { continue };
        let t = Target::of_plan(s, &i.plan_guid).await?;
        unbind(s, &b, &i, &t, user).await?;
    }
    store::services::unshare_space(&s.db.pool, space).await?;
    for i in store::services::managed_of_space(&s.db.pool, space).await? {
        let t = Target::of_plan(s, &i.plan_guid).await?;
        deprovision(s, &i, &t, user).await?;
    }
    Ok(())
}

/// Each plan's `maintenance_info`, by plan guid.
pub type PlanVersions = std::collections::HashMap<String, serde_json::Value>;

pub async fn plan_versions(s: &AppState) -> ApiResult<PlanVersions> {
    Ok(store::brokers::all_plans(&s.db.pool)
        .await?
        .into_iter()
        .filter_map(|p| maintenance_info(&p).map(|m| (p.guid, m)))
        .collect())
}
