//! Route services: `bind-route-service` (`brs`) and `unbind-route-service` (`urs`), as the cf
//! CLI v8 has them. A route (domain, `--hostname`, `--path`) bound to a user-provided service
//! instance with a route service URL has its requests sent through that URL by the router.

use serde_json::{Map, Value};
use wire::v3::service_binding::{RouteBindingCreate, RouteBindingRelationships};
use wire::v3::{Page, Route, RouteBinding, ToOne};

use crate::client::{query, Client, Ignored, Result};
use crate::error::CliError;
use crate::lookup::route_url as url;
use crate::output::{bold, confirm};

/// The route, or a not-found error that says how to find or make it.
async fn route(c: &mut Client, domain: &str, host: &str, path: &str) -> Result<Route> {
    c.route(domain, host, path).await?.ok_or_else(|| {
        let shown_path = if path.is_empty() { "/" } else { path };
        CliError::NotFound(format!(
            "Route with host '{host}', domain '{domain}', and path '{shown_path}' not found. See 'paas routes', or create it with 'paas create-route'."
        ))
    })
}

/// `-c` as cf takes it: a JSON object, or a file holding one.
fn parameters(c: &str) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(c).unwrap_or_else(|_| c.to_owned());
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(v)) => Ok(v),
        _ => Err(CliError::Usage(format!(
            "-c takes parameters as a JSON object or a file holding one, e.g. -c '{{\"key\":\"value\"}}' (got '{c}')"
        ))),
    }
}

pub struct RouteServiceArgs {
    pub domain: String,
    pub service: String,
    pub hostname: String,
    pub path: String,
}

pub async fn bind(c: &mut Client, a: &RouteServiceArgs, params: Option<&str>) -> Result<()> {
    let u = url(&a.hostname, &a.domain, &a.path);
    let params = params.map(parameters).transpose()?;
    let si = c.require_service_instance(&a.service).await?;
    let r = route(c, &a.domain, &a.hostname, &a.path).await?;
    println!("Binding route {} to service instance {} ...", bold(&u), bold(&a.service));
    let body = RouteBindingCreate {
        relationships: RouteBindingRelationships {
            service_instance: ToOne::of(&si.guid),
            route: ToOne::of(&r.guid),
        },
        parameters: params,
    };
    match c.post::<Ignored>("/v3/service_route_bindings", &body).await {
        Ok(_) => {}
        Err(CliError::Api { title, .. })
            if title == "CF-ServiceInstanceAlreadyBoundToSameRoute" =>
        {
            println!("Route {u} is already bound to service instance {}.", a.service);
        }
        Err(CliError::Api { status, title, detail, request_id })
            if detail.contains("does not support route binding") =>
        {
            let detail = format!(
                "{detail}: it has no route service URL. Give it one with 'paas update-user-provided-service {} -r https://...', then bind again.",
                a.service
            );
            return Err(CliError::Api { status, title, detail, request_id });
        }
        Err(e) => return Err(e),
    }
    println!("OK");
    Ok(())
}

pub async fn unbind(c: &mut Client, a: &RouteServiceArgs, force: bool) -> Result<()> {
    let u = url(&a.hostname, &a.domain, &a.path);
    let question = format!("Really unbind route {u} from service instance {}?", a.service);
    if !force && !confirm(&question)? {
        println!("Unbind cancelled");
        return Ok(());
    }
    let si = c.require_service_instance(&a.service).await?;
    let r = route(c, &a.domain, &a.hostname, &a.path).await?;
    println!("Unbinding route {} from service instance {} ...", bold(&u), bold(&a.service));
    let bindings: Vec<RouteBinding> = c
        .list(&format!(
            "/v3/service_route_bindings{}",
            query(&[("route_guids", &r.guid), ("service_instance_guids", &si.guid)])
        ))
        .await?;
    match bindings.first() {
        Some(b) => c.delete(&format!("/v3/service_route_bindings/{}", b.guid)).await?,
        None => println!("Route {u} was not bound to service instance {}.", a.service),
    }
    println!("OK");
    Ok(())
}

/// The name of the service instance bound to each of `routes` (by route guid), for `routes`.
pub async fn bound_instances(
    c: &mut Client,
    routes: &[Route],
) -> Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    let guids: Vec<&str> = routes.iter().map(|r| r.guid.as_str()).collect();
    for batch in guids.chunks(50) {
        let page: Page<RouteBinding> = c
            .get(&format!(
                "/v3/service_route_bindings{}",
                query(&[
                    ("route_guids", &batch.join(",")),
                    ("include", "service_instance"),
                    ("per_page", "5000"),
                ])
            ))
            .await?;
        let included = page.included.and_then(|i| i.service_instances).unwrap_or_default();
        for b in page.resources {
            let si = b.relationships.service_instance.guid();
            let name = included
                .iter()
                .find(|i| Some(i.guid.as_str()) == si)
                .map(|i| i.name.as_str())
                .unwrap_or_default();
            if let Some(r) = b.relationships.route.guid() {
                out.insert(r.to_owned(), name.to_owned());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_a_json_object() {
        assert_eq!(parameters(r#"{"a":1}"#).expect("object")["a"], 1);
        let e = parameters("[1]").expect_err("not an object");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("-c takes parameters"), "{e}");
    }
}
