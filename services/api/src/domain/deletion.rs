//! Deleting a space or an org with everything in it, as one transaction: either every row goes
//! or none does. Managed service instances and bindings are first released at their brokers
//! (a broker that fails fails the deletion, before any row goes). What lives outside the database follows the commit: the scheduler stops the
//! apps' instances and tasks, the blobstore drops their packages and droplets, apps outside that were
//! routed into the space are resynced, and the audit events are written. Should the scheduler
//! be unreachable then, the periodic resync removes the instances of apps that no longer exist.

use serde_json::json;

use crate::domain::events::{self, Actor, Target};
use crate::error::ApiResult;
use crate::store::orgs::Org;
use crate::store::spaces::Space;
use crate::store::{self, cascade};
use crate::AppState;

/// What a space's deletion must do outside the database, read before the rows go.
struct Aftermath {
    /// `(guid, name)` of the deleted apps.
    apps: Vec<(String, String)>,
    /// Blob keys of their packages and droplets.
    blobs: Vec<String>,
    /// Their tasks that have not ended.
    tasks: Vec<String>,
    /// The STOPPED usage events of those that were started.
    usage: Vec<wire::v3::usage_event::AppUsage>,
    /// `(binding, route, instance)` of the deleted route bindings.
    route_bindings: Vec<(String, String, String)>,
    /// Apps of other spaces that lose routes of this one.
    routed_in: Vec<String>,
}

impl Aftermath {
    async fn of_space(s: &AppState, space: &str) -> ApiResult<Self> {
        let pool = &s.db.pool;
        let apps = cascade::apps_of_space(pool, space).await?;
        let (mut blobs, mut tasks, mut usage) = (Vec::new(), Vec::new(), Vec::new());
        for (app, _) in &apps {
            blobs.extend(blobs_of_app(pool, app).await?);
            tasks.extend(store::tasks::active_of_app(pool, app).await?);
            usage.extend(crate::domain::usage_events::stopping(s, app).await);
        }
        Ok(Self {
            apps,
            blobs,
            tasks,
            usage,
            route_bindings: cascade::route_bindings_of_space(pool, space).await?,
            routed_in: cascade::apps_routed_into_space(pool, space).await?,
        })
    }

    /// Stop the deleted apps' instances and tasks and remove their blobs.
    async fn stop_and_remove(&self, s: &AppState) {
        crate::domain::tasks::stop_deleted(s, &self.tasks).await;
        crate::domain::usage_events::record_all(s, &self.usage).await;
        for (app, _) in &self.apps {
            if let Err(e) = crate::domain::desired::remove_app(s, app).await {
                tracing::warn!(app_guid = %app, error = %e, "instances of a deleted app not stopped yet; the resync will");
            }
            if let Err(e) = crate::domain::staging::clear_buildpack_cache(s, Some(app)).await {
                tracing::warn!(app_guid = %app, error = %e, "a deleted app's buildpack cache was not removed");
            }
        }
        for key in &self.blobs {
            if let Err(e) = s.blobs.delete(key).await {
                tracing::warn!(key = %key, error = %e, "a deleted app's blob was not removed");
            }
        }
    }

    /// Instances, blobs, resyncs and events, once the rows are gone.
    async fn follow(self, s: &AppState, space: &Space, actor: &Actor) {
        self.stop_and_remove(s).await;
        for (app, name) in &self.apps {
            let t = space.target(app, "app", name);
            events::record(s, "audit.app.delete-request", actor, &t, json!({"recursive": true}))
                .await;
        }
        for (binding, route, instance) in &self.route_bindings {
            let t = space.target(binding, "service_route_binding", "");
            let data = json!({"request": {"route_guid": route, "service_instance_guid": instance}});
            events::record(s, "audit.service_route_binding.delete", actor, &t, data).await;
        }
        for app in &self.routed_in {
            crate::domain::desired::sync_app_logged(s, app).await;
        }
    }
}

/// Blob keys of an app's packages and droplets.
async fn blobs_of_app(pool: &sqlx::AnyPool, app: &str) -> ApiResult<Vec<String>> {
    let mut blobs = Vec::new();
    for p in cascade::package_guids_of_app(pool, app).await? {
        blobs.extend(blobstore::package_key(&p).ok());
    }
    for d in cascade::droplet_guids_of_app(pool, app).await? {
        blobs.extend(blobstore::droplet_key(&d).ok());
    }
    Ok(blobs)
}

/// Delete an app with everything it owns: its rows in one transaction, then its instances,
/// its packages' and droplets' blobs, and the audit event.
pub async fn delete_app(s: &AppState, guid: &str, actor: &Actor) -> ApiResult<()> {
    let Some(app) = store::apps::find(&s.db.pool, guid).await? else { return Ok(()) };
    crate::domain::managed::unbind_app(s, guid, &actor.guid).await?;
    let space = store::spaces::find(&s.db.pool, &app.space_guid).await?;
    let blobs = blobs_of_app(&s.db.pool, guid).await?;
    let tasks = store::tasks::active_of_app(&s.db.pool, guid).await?;
    let usage = crate::domain::usage_events::stopping(s, guid).await;
    let mut tx = store::begin(&s.db).await?;
    cascade::delete_app(&mut tx, guid).await?;
    tx.commit().await?;
    let after = Aftermath {
        apps: vec![(app.guid.clone(), app.name.clone())],
        blobs,
        tasks,
        usage,
        route_bindings: Vec::new(),
        routed_in: Vec::new(),
    };
    match space {
        Some(space) => after.follow(s, &space, actor).await,
        None => after.stop_and_remove(s).await,
    }
    Ok(())
}

/// Delete a space and everything in it.
pub async fn delete_space(s: &AppState, space: &Space, actor: &Actor) -> ApiResult<()> {
    crate::domain::managed::deprovision_space(s, &space.guid, &actor.guid).await?;
    let after = Aftermath::of_space(s, &space.guid).await?;
    let mut tx = store::begin(&s.db).await?;
    cascade::delete_space(&mut tx, &space.guid).await?;
    tx.commit().await?;
    after.follow(s, space, actor).await;
    let t = space.target(&space.guid, "space", &space.name);
    events::record(s, "audit.space.delete-request", actor, &t, json!({})).await;
    Ok(())
}

/// Delete an org with every space in it, its roles and its private domains.
pub async fn delete_org(s: &AppState, org: &Org, actor: &Actor) -> ApiResult<()> {
    let mut spaces = Vec::new();
    for guid in cascade::spaces_of_org(&s.db.pool, &org.guid).await? {
        crate::domain::managed::deprovision_space(s, &guid, &actor.guid).await?;
        if let Some(space) = store::spaces::find(&s.db.pool, &guid).await? {
            let after = Aftermath::of_space(s, &guid).await?;
            spaces.push((space, after));
        }
    }
    let mut tx = store::begin(&s.db).await?;
    cascade::delete_org(&mut tx, &org.guid).await?;
    tx.commit().await?;
    for (space, after) in spaces {
        after.follow(s, &space, actor).await;
    }
    let t = Target { guid: &org.guid, kind: "organization", name: &org.name, ..Default::default() };
    events::record(s, "audit.organization.delete-request", actor, &t, json!({})).await;
    Ok(())
}
