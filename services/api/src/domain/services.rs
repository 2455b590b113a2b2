//! User-provided service instances and their bindings to apps: the checks of drain and route
//! service URLs, deleting an instance with everything bound to it, the `VCAP_SERVICES` an app
//! gets and the syslog drains the logs service reads.

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::store::route_bindings::RouteBinding;
use crate::store::services::{Binding, Instance};
use crate::store::{self};
use crate::AppState;

/// Drain URL schemes the logs service forwards to.
const DRAIN_SCHEMES: [&str; 3] = ["syslog", "syslog-tls", "https"];

/// An empty URL (no drain) or one with a scheme the logs service forwards to and a host.
pub fn check_drain_url(u: &str) -> ApiResult<String> {
    if u.is_empty() {
        return Ok(String::new());
    }
    let parsed = url::Url::parse(u).map_err(|_| {
        ApiError::Unprocessable(format!("Syslog drain url '{u}' is not a valid URL"))
    })?;
    if !DRAIN_SCHEMES.contains(&parsed.scheme()) || parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::Unprocessable(format!(
            "Syslog drain url must be syslog://host:port, syslog-tls://host:port or https://host/path (got '{u}')"
        )));
    }
    if parsed.scheme() != "https" && parsed.port().is_none() {
        return Err(ApiError::Unprocessable(format!("Syslog drain url '{u}' needs a port")));
    }
    Ok(u.to_owned())
}

/// An empty URL (not a route service) or an https URL with a host.
pub fn check_route_service_url(u: &str) -> ApiResult<()> {
    if u.is_empty() || url::Url::parse(u).is_ok_and(|p| p.scheme() == "https" && p.host().is_some())
    {
        Ok(())
    } else {
        Err(ApiError::Unprocessable("Route service url must be https".into()))
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::Unprocessable(format!("The service instance name is taken: {name}."))
}

pub async fn create_instance(s: &AppState, i: &Instance) -> ApiResult<()> {
    store::services::insert(&s.db.pool, i, || name_taken(&i.name)).await?;
    crate::domain::usage_events::service(s, i, "CREATED").await;
    Ok(())
}

/// Store an instance's changed fields; the apps to resync when its `route_service_url`
/// changed (those of the routes bound to it).
pub async fn update_instance(
    s: &AppState,
    i: &Instance,
    route_service_changed: bool,
) -> ApiResult<Vec<String>> {
    store::services::update(&s.db.pool, i, || name_taken(&i.name)).await?;
    crate::domain::usage_events::service(s, i, "UPDATED").await;
    if !route_service_changed {
        return Ok(Vec::new());
    }
    crate::domain::routing::apps_behind_instance(s, &i.guid).await
}

/// What deleting an instance unbound: its route bindings, and the apps of those routes to
/// resync.
#[derive(Debug, Default)]
pub struct Deleted {
    pub route_bindings: Vec<RouteBinding>,
    pub resync: Vec<String>,
}

/// Remove an instance with its bindings to apps and routes (user-provided instances need no
/// broker), as CC does, in one transaction.
pub async fn delete_instance(s: &AppState, guid: &str) -> ApiResult<Deleted> {
    let gone = store::services::find(&s.db.pool, guid).await?;
    let mut tx = store::begin(&s.db).await?;
    let route_bindings = store::route_bindings::of_instance(&mut *tx, guid).await?;
    let mut resync = Vec::new();
    for b in &route_bindings {
        resync.extend(store::routes::apps_of(&mut *tx, &b.route_guid).await?);
    }
    store::services::delete_instance_rows(&mut tx, guid).await?;
    tx.commit().await?;
    if let Some(i) = gone {
        crate::domain::usage_events::service(s, &i, "DELETED").await;
    }
    Ok(Deleted { route_bindings, resync })
}

/// Bind an app to an instance (both checked by the caller).
pub async fn bind(s: &AppState, b: &Binding) -> ApiResult<()> {
    store::services::insert_binding(&s.db.pool, b, || {
        ApiError::Unprocessable("The app is already bound to the service instance".into())
    })
    .await
}

/// Remove one binding of an app.
pub async fn unbind(s: &AppState, guid: &str) -> ApiResult<()> {
    let mut tx = store::begin(&s.db).await?;
    store::services::delete_binding(&mut tx, guid).await?;
    tx.commit().await?;
    Ok(())
}

/// `VCAP_SERVICES` of an app (docs/api.md): `{}` without bindings. User-provided instances
/// are under `user-provided`; managed ones under their offering's name, with the plan and
/// the broker's credentials for the binding.
pub async fn vcap_services(s: &AppState, app: &str) -> ApiResult<Value> {
    let bound = store::services::bound_to_app(&s.db.pool, app).await?;
    let mut out = serde_json::Map::new();
    for b in bound {
        let i = b.instance;
        let drain =
            if i.syslog_drain_url.is_empty() { Value::Null } else { json!(i.syslog_drain_url) };
        let name = if b.binding_name.is_empty() { i.name.clone() } else { b.binding_name.clone() };
        let binding_name =
            if b.binding_name.is_empty() { Value::Null } else { json!(b.binding_name) };
        let (label, entry) = if i.managed() {
            let plan = store::brokers::find_plan(&s.db.pool, &i.plan_guid).await?;
            let offering = match &plan {
                Some(p) => store::brokers::find_offering(&s.db.pool, &p.offering_guid).await?,
                None => None,
            };
            let label = offering.as_ref().map_or_else(String::new, |o| o.name.clone());
            let mut tags = offering.map(|o| o.tags).unwrap_or_default();
            tags.extend(i.tags.iter().cloned());
            let entry = json!({
                "label": label,
                "provider": null,
                "plan": plan.map(|p| p.name),
                "name": name,
                "tags": tags,
                "instance_guid": i.guid, "instance_name": i.name,
                "binding_guid": b.binding_guid,
                "binding_name": binding_name,
                "credentials": b.credentials.unwrap_or_else(|| json!({})),
                "syslog_drain_url": drain, "volume_mounts": [],
            });
            (label, entry)
        } else {
            let entry = json!({
                "label": "user-provided",
                "name": name,
                "tags": i.tags,
                "instance_guid": i.guid, "instance_name": i.name,
                "binding_guid": b.binding_guid,
                "binding_name": binding_name,
                "credentials": i.credentials, "syslog_drain_url": drain, "volume_mounts": [],
            });
            ("user-provided".to_owned(), entry)
        };
        if let Some(Value::Array(list)) = out.get_mut(&label) {
            list.push(entry);
        } else {
            out.insert(label, json!([entry]));
        }
    }
    Ok(Value::Object(out))
}

/// One DNS-label-like part of a drain HOSTNAME: ASCII letters, digits and `-`, at most 63.
fn host_part(s: &str) -> String {
    let cleaned: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let trimmed = cleaned.trim_matches('-');
    trimmed.chars().take(63).collect()
}

/// Every app bound to an instance with a drain URL, for the logs service.
pub async fn syslog_drains(s: &AppState) -> ApiResult<wire::drains::SyslogDrains> {
    let rows = store::services::drain_bindings(&s.db.pool).await?;
    let drains = rows
        .into_iter()
        .map(|d| wire::drains::SyslogDrain {
            hostname: format!(
                "{}.{}.{}",
                host_part(&d.org_name),
                host_part(&d.space_name),
                host_part(&d.app_name)
            ),
            binding_guid: d.binding_guid,
            app_guid: d.app_guid,
            url: d.url,
        })
        .collect();
    Ok(wire::drains::SyslogDrains { drains })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_urls_need_a_known_scheme_a_host_and_a_port() {
        assert!(check_drain_url("syslog://logs.example.com:514").is_ok());
        assert!(check_drain_url("syslog-tls://logs.example.com:6514?drain-data=all").is_ok());
        assert!(check_drain_url("https://logs.example.com/drain").is_ok());
        assert_eq!(check_drain_url("").ok(), Some(String::new()));
        for bad in ["syslog://logs.example.com", "ftp://x:1", "not a url", "syslog://:514"] {
            assert!(check_drain_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_service_urls_are_https() {
        assert!(check_route_service_url("").is_ok());
        assert!(check_route_service_url("https://rs.example.com").is_ok());
        assert!(check_route_service_url("http://rs.example.com").is_err());
    }

    #[test]
    fn hostnames_are_sanitized_labels() {
        assert_eq!(host_part("My Org_1"), "My-Org-1");
        assert_eq!(host_part(&"a".repeat(80)).len(), 63);
        assert_eq!(host_part("-x-"), "x");
    }
}
