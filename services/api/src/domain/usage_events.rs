//! App and service usage events (docs/api.md, "Usage events"), as billing and metering read
//! them: an app's processes STARTED and STOPPED with their instances and memory (again
//! STARTED, with the previous values, when a started process is scaled), tasks TASK_STARTED
//! and TASK_STOPPED, service instances CREATED, UPDATED and DELETED. Recording never fails the
//! action it follows: a failure is logged.

use wire::v3::usage_event::{AppUsage, Change, GuidRef, Named, NamedTyped, ServiceUsage, Typed};

use crate::error::ApiResult;
use crate::store::apps::App;
use crate::store::processes::Process;
use crate::store::services::Instance;
use crate::store::tasks::Task;
use crate::store::usage_events::Event;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub const APP: &str = "app";
pub const SERVICE: &str = "service";

fn named(guid: &str, name: &str) -> Named {
    Named { guid: Some(guid.to_owned()), name: Some(name.to_owned()) }
}

async fn record<T: serde::Serialize>(s: &AppState, kind: &str, data: &T) {
    let event = Event {
        guid: new_guid(),
        kind: kind.to_owned(),
        data: serde_json::to_value(data).unwrap_or_default(),
        created_at: now_ms(),
    };
    if let Err(e) = store::usage_events::insert(&s.db.pool, &event).await {
        tracing::warn!(kind, error = %e, "a usage event was not recorded");
    }
}

/// The usage of one process of `app` (space and org looked up), in `state`.
async fn process_usage(
    s: &AppState,
    app: &App,
    p: &Process,
    state: Change<String>,
) -> ApiResult<AppUsage> {
    let space = store::spaces::find(&s.db.pool, &app.space_guid).await?;
    let (space, org) = match &space {
        Some(sp) => (named(&sp.guid, &sp.name), GuidRef { guid: Some(sp.org_guid.clone()) }),
        None => (Named::default(), GuidRef::default()),
    };
    let buildpack = store::droplets::find(&s.db.pool, &app.droplet_guid)
        .await?
        .and_then(|d| d.buildpacks.first().map(|b| b.name.clone()));
    Ok(AppUsage {
        state,
        app: named(&app.guid, &app.name),
        process: Typed { guid: Some(p.guid.clone()), kind: Some(p.kind.clone()) },
        space,
        organization: org,
        buildpack: Named { guid: None, name: buildpack },
        task: Named::default(),
        memory_in_mb_per_instance: Change { current: Some(p.memory_mb), previous: None },
        instance_count: Change { current: Some(p.instances), previous: None },
    })
}

fn change(current: &str, previous: Option<&str>) -> Change<String> {
    Change { current: Some(current.to_owned()), previous: previous.map(str::to_owned) }
}

/// Every process of the app, now `state` (STARTED or STOPPED) after `previous`.
pub async fn app_processes(s: &AppState, app: &App, state: &str, previous: Option<&str>) {
    let usages = async {
        let mut out = Vec::new();
        for p in store::processes::of_app(&s.db.pool, &app.guid).await? {
            out.push(process_usage(s, app, &p, change(state, previous)).await?);
        }
        ApiResult::Ok(out)
    };
    match usages.await {
        Ok(list) => {
            for u in &list {
                record(s, APP, u).await;
            }
        }
        Err(e) => tracing::warn!(app_guid = %app.guid, error = %e, "usage events not recorded"),
    }
}

/// The STOPPED events of a started app about to be deleted (recorded once it is gone).
pub async fn stopping(s: &AppState, app_guid: &str) -> Vec<AppUsage> {
    let Ok(Some(app)) = store::apps::find(&s.db.pool, app_guid).await else { return Vec::new() };
    if app.state != wire::v3::AppState::Started {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in store::processes::of_app(&s.db.pool, app_guid).await.unwrap_or_default() {
        if let Ok(u) = process_usage(s, &app, &p, change("STOPPED", Some("STARTED"))).await {
            out.push(u);
        }
    }
    out
}

pub async fn record_all(s: &AppState, usages: &[AppUsage]) {
    for u in usages {
        record(s, APP, u).await;
    }
}

/// A started app's process scaled: STARTED with the new and the previous size.
pub async fn scaled(s: &AppState, app: &App, p: &Process, before: (i64, i64)) {
    if app.state != wire::v3::AppState::Started || (p.instances, p.memory_mb) == before {
        return;
    }
    match process_usage(s, app, p, change("STARTED", Some("STARTED"))).await {
        Ok(mut u) => {
            u.instance_count.previous = Some(before.0);
            u.memory_in_mb_per_instance.previous = Some(before.1);
            record(s, APP, &u).await;
        }
        Err(e) => tracing::warn!(process_guid = %p.guid, error = %e, "usage event not recorded"),
    }
}

/// A task started (TASK_STARTED) or ended (TASK_STOPPED).
pub async fn task(s: &AppState, app: &App, t: &Task, state: &str) {
    let space = store::spaces::find(&s.db.pool, &app.space_guid).await.ok().flatten();
    let u = AppUsage {
        state: change(state, None),
        app: named(&app.guid, &app.name),
        process: Typed::default(),
        space: space.as_ref().map(|sp| named(&sp.guid, &sp.name)).unwrap_or_default(),
        organization: GuidRef { guid: space.map(|sp| sp.org_guid) },
        buildpack: Named::default(),
        task: named(&t.guid, &t.name),
        memory_in_mb_per_instance: Change { current: Some(t.memory_mb), previous: None },
        instance_count: Change { current: Some(1), previous: None },
    };
    record(s, APP, &u).await;
}

/// A service instance CREATED, UPDATED or DELETED.
pub async fn service(s: &AppState, i: &Instance, state: &str) {
    let pool = &s.db.pool;
    let space = store::spaces::find(pool, &i.space_guid).await.ok().flatten();
    let mut u = ServiceUsage {
        state: Some(state.to_owned()),
        space: space.as_ref().map(|sp| named(&sp.guid, &sp.name)).unwrap_or_default(),
        organization: GuidRef { guid: space.map(|sp| sp.org_guid) },
        service_instance: NamedTyped {
            guid: Some(i.guid.clone()),
            name: Some(i.name.clone()),
            kind: Some(
                if i.managed() {
                    "managed_service_instance"
                } else {
                    "user_provided_service_instance"
                }
                .into(),
            ),
        },
        ..ServiceUsage::default()
    };
    if i.managed() {
        if let Ok(Some(plan)) = store::brokers::find_plan(pool, &i.plan_guid).await {
            u.service_plan = named(&plan.guid, &plan.name);
            if let Ok(Some(o)) = store::brokers::find_offering(pool, &plan.offering_guid).await {
                u.service_offering = named(&o.guid, &o.name);
                if let Ok(Some(b)) = store::brokers::find_broker(pool, &o.broker_guid).await {
                    u.service_broker = named(&b.guid, &b.name);
                }
            }
        }
    }
    record(s, SERVICE, &u).await;
}

/// CC's `destructively_purge_all_and_reseed`: the events of `kind` replaced by what runs now
/// (STARTED for every process of every started app; CREATED for every service instance).
pub async fn purge_and_reseed(s: &AppState, kind: &str) -> ApiResult<()> {
    store::usage_events::purge(&s.db.pool, kind).await?;
    if kind == APP {
        for guid in store::apps::started_guids(&s.db.pool).await? {
            if let Some(app) = store::apps::find(&s.db.pool, &guid).await? {
                app_processes(s, &app, "STARTED", None).await;
            }
        }
    } else {
        for i in store::services::all_instances(&s.db.pool).await? {
            service(s, &i, "CREATED").await;
        }
    }
    Ok(())
}
