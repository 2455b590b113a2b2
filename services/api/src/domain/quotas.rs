//! Quota checks: whether an action keeps an org and its space within their quotas, with CC's
//! words when it would not.

use crate::error::{ApiError, ApiResult};
use crate::store::quotas::{self, Scope};
use crate::AppState;

fn scopes<'a>(org: &'a str, space: &'a str) -> [Scope<'a>; 2] {
    [Scope::Org(org), Scope::Space(space)]
}

fn name(scope: Scope<'_>) -> &'static str {
    match scope {
        Scope::Org(_) => "organization",
        Scope::Space(_) => "space",
    }
}

/// One more route.
pub async fn check_routes(s: &AppState, org: &str, space: &str) -> ApiResult<()> {
    let db = &s.db.pool;
    for scope in scopes(org, space) {
        let Some(max) = quotas::limits(db, scope).await?.and_then(|l| l.total_routes) else {
            continue;
        };
        if quotas::count_routes(db, scope).await? >= max {
            return Err(ApiError::Unprocessable(format!(
                "Routes quota exceeded for {}.",
                name(scope)
            )));
        }
    }
    Ok(())
}

/// One more app.
pub async fn check_apps(s: &AppState, org: &str, space: &str) -> ApiResult<()> {
    let db = &s.db.pool;
    for scope in scopes(org, space) {
        let Some(max) = quotas::limits(db, scope).await?.and_then(|l| l.total_apps) else {
            continue;
        };
        if quotas::count_apps(db, scope).await? >= max {
            return Err(ApiError::Unprocessable(format!(
                "Apps quota exceeded for {}.",
                name(scope)
            )));
        }
    }
    Ok(())
}

/// One more task of `app` (CC's `per_app_tasks`: tasks pending or running at once).
pub async fn check_app_tasks(s: &AppState, org: &str, space: &str, app: &str) -> ApiResult<()> {
    let db = &s.db.pool;
    for scope in scopes(org, space) {
        let Some(max) = quotas::limits(db, scope).await?.and_then(|l| l.per_app_tasks) else {
            continue;
        };
        if crate::store::tasks::count_active(db, app).await? >= max {
            return Err(ApiError::Unprocessable(format!(
                "Task quota exceeded: the {}'s limit of {max} running tasks per app is reached; \
                 wait for a task to finish or cancel one.",
                name(scope)
            )));
        }
    }
    Ok(())
}

/// Would running the started processes with `process` changed to `instances` × `memory_mb`
/// stay within the org's and the space's quotas?
pub async fn check_memory(
    s: &AppState,
    org: &str,
    space: &str,
    process: &str,
    instances: i64,
    memory_mb: i64,
) -> ApiResult<()> {
    let db = &s.db.pool;
    for scope in scopes(org, space) {
        let Some(l) = quotas::limits(db, scope).await? else { continue };
        let who = name(scope);
        if let Some(max) = l.instance_memory_mb {
            if memory_mb > max {
                return Err(ApiError::Unprocessable(format!("Memory quota exceeded: the {who}'s instance memory limit of {max}M is exceeded by {memory_mb}M.")));
            }
        }
        if let Some(max) = l.total_memory_mb {
            if quotas::started_memory(db, scope, process).await? + instances * memory_mb > max {
                return Err(ApiError::Unprocessable(format!(
                    "Memory quota exceeded: the {who}'s memory limit of {max}M would be exceeded."
                )));
            }
        }
        if let Some(max) = l.total_instances {
            if quotas::started_instances(db, scope, process).await? + instances > max {
                return Err(ApiError::Unprocessable(format!("Instances quota exceeded: the {who}'s limit of {max} instances would be exceeded.")));
            }
        }
    }
    Ok(())
}
