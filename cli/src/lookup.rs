//! Finding resources by the names people type: apps and service instances in the targeted
//! space, orgs, spaces, domains, routes and buildpacks. Each is a method on [`Client`], so commands look
//! things up without depending on each other.

use wire::v3::domain::Domain;
use wire::v3::stack::Buildpack;
use wire::v3::{App, Organization, Route, ServiceInstance, Space};

use crate::client::{query, Client, Result};
use crate::error::CliError;

/// `host.domain/path`, as routes are shown.
pub fn route_url(host: &str, domain: &str, path: &str) -> String {
    if host.is_empty() {
        format!("{domain}{path}")
    } else {
        format!("{host}.{domain}{path}")
    }
}

impl Client {
    /// The first resource of a list, or `missing` as a not-found error.
    async fn first<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        missing: impl FnOnce() -> String,
    ) -> Result<T> {
        let list = self.list(path).await?;
        list.into_iter().next().ok_or_else(|| CliError::NotFound(missing()))
    }

    /// The app of this name in the targeted space.
    pub async fn app(&mut self, name: &str) -> Result<App> {
        let space = self.cfg.require_space()?.guid.clone();
        let path = format!("/v3/apps{}", query(&[("names", name), ("space_guids", &space)]));
        self.first(&path, || format!("App '{name}' not found. See 'paas apps'.")).await
    }

    pub async fn org(&mut self, name: &str) -> Result<Organization> {
        let path = format!("/v3/organizations{}", query(&[("names", name)]));
        self.first(&path, || format!("Organization '{name}' not found. See 'paas orgs'.")).await
    }

    /// The space of this name in the org `org_guid`.
    pub async fn space(&mut self, org_guid: &str, name: &str) -> Result<Space> {
        let q = query(&[("names", name), ("organization_guids", org_guid)]);
        self.first(&format!("/v3/spaces{q}"), || {
            format!("Space '{name}' not found. See 'paas spaces'.")
        })
        .await
    }

    pub async fn domain(&mut self, name: &str) -> Result<Domain> {
        let path = format!("/v3/domains{}", query(&[("names", name)]));
        self.first(&path, || format!("Domain '{name}' not found. See 'paas domains'.")).await
    }

    /// The route `host.domain/path`, if it exists (the domain must).
    pub async fn route(&mut self, domain: &str, host: &str, path: &str) -> Result<Option<Route>> {
        let d = self.domain(domain).await?;
        let q = query(&[("domain_guids", &d.guid), ("hosts", host), ("paths", path)]);
        let list = self.list(&format!("/v3/routes{q}")).await?;
        Ok(list.into_iter().next())
    }

    pub async fn buildpack(&mut self, name: &str) -> Result<Buildpack> {
        let path = format!("/v3/buildpacks{}", query(&[("names", name)]));
        self.first(&path, || format!("Buildpack '{name}' not found. See 'paas buildpacks'.")).await
    }

    /// The service instance of this name in the targeted space, if any.
    pub async fn service_instance(&mut self, name: &str) -> Result<Option<ServiceInstance>> {
        let space = self.cfg.require_space()?.guid.clone();
        let q = query(&[("names", name), ("space_guids", &space)]);
        let list = self.list(&format!("/v3/service_instances{q}")).await?;
        Ok(list.into_iter().next())
    }

    /// The service instance of this name in the targeted space, or a not-found error.
    pub async fn require_service_instance(&mut self, name: &str) -> Result<ServiceInstance> {
        self.service_instance(name).await?.ok_or_else(|| {
            CliError::NotFound(format!("Service instance '{name}' not found. See 'paas services'."))
        })
    }
}
