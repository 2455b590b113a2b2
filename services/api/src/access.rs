//! Who is calling and what they may do (docs/api.md, "Who may do what"): the caller from a verified
//! bearer token, the read/write scope check by HTTP method, and the role matrix over orgs and
//! spaces. Resources a caller may not read are reported as 404, never 403, so the existence of
//! another tenant's resources never leaks.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use tokio::sync::OnceCell;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub const ORG_ROLES: [&str; 4] = [
    "organization_user",
    "organization_auditor",
    "organization_manager",
    "organization_billing_manager",
];
pub const SPACE_ROLES: [&str; 4] =
    ["space_developer", "space_manager", "space_auditor", "space_supporter"];

/// One role the caller holds: `(type, org guid, space guid)`; the unused guid is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub kind: String,
    pub org: String,
    pub space: String,
}

/// The authenticated caller of a public endpoint.
pub struct Caller {
    pub claims: auth::Claims,
    roles: OnceCell<Vec<Held>>,
    db: kit::db::Db,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::NotAuthenticated)?;
        let claims =
            state.uaa.verifier.verify(header).await.map_err(|_| ApiError::InvalidAuthToken)?;
        if !claims.aud.iter().any(|a| a == "cloud_controller") {
            return Err(ApiError::InvalidAuthToken);
        }
        let read = matches!(parts.method, Method::GET | Method::HEAD);
        let allowed = claims.is_admin()
            || (read && claims.is_global_reader())
            || claims.has_scope(if read { auth::SCOPE_READ } else { auth::SCOPE_WRITE });
        if !allowed {
            return Err(ApiError::NotAuthorized);
        }
        Ok(Caller::new(claims, state.db.clone()))
    }
}

impl Caller {
    pub fn new(claims: auth::Claims, db: kit::db::Db) -> Self {
        Self { claims, roles: OnceCell::new(), db }
    }

    pub fn guid(&self) -> &str {
        self.claims.actor_guid()
    }

    /// Name for audit events: user name, else client id.
    pub fn name(&self) -> &str {
        self.claims.user_name.as_deref().unwrap_or(&self.claims.client_id)
    }

    pub fn email(&self) -> &str {
        self.claims.email.as_deref().unwrap_or("")
    }

    pub fn admin(&self) -> bool {
        self.claims.is_admin()
    }

    pub fn global_reader(&self) -> bool {
        self.claims.is_global_reader()
    }

    pub async fn roles(&self) -> ApiResult<&[Held]> {
        let roles = self
            .roles
            .get_or_try_init(|| async {
                let held = crate::store::roles::held_by(&self.db.pool, self.guid()).await?;
                Ok::<_, ApiError>(
                    held.into_iter().map(|(kind, org, space)| Held { kind, org, space }).collect(),
                )
            })
            .await?;
        Ok(roles)
    }

    async fn has(&self, kinds: &[&str], org: &str, space: &str) -> ApiResult<bool> {
        Ok(self.roles().await?.iter().any(|r| {
            kinds.contains(&r.kind.as_str())
                && (org.is_empty() || r.org == org)
                && (space.is_empty() || r.space == space)
        }))
    }

    /// Reads the org (any org role, or a role in one of its spaces).
    pub async fn org_readable(&self, org: &str) -> ApiResult<bool> {
        if self.global_reader() {
            return Ok(true);
        }
        Ok(self.roles().await?.iter().any(|r| r.org == org))
    }

    pub async fn org_manager(&self, org: &str) -> ApiResult<bool> {
        Ok(self.admin() || self.has(&["organization_manager"], org, "").await?)
    }

    /// Reads the space and what is in it (apps, processes, packages, builds, droplets, routes).
    pub async fn space_readable(&self, space: &str, org: &str) -> ApiResult<bool> {
        Ok(self.global_reader()
            || self.has(&SPACE_ROLES, "", space).await?
            || self.has(&["organization_manager"], org, "").await?)
    }

    /// Requires read access (else 404 for `what`) and one of `writers` in the space (else 403).
    pub async fn require_space(
        &self,
        space: &str,
        org: &str,
        what: &'static str,
        writers: Need,
    ) -> ApiResult<()> {
        if !self.space_readable(space, org).await? {
            return Err(ApiError::NotFound(what));
        }
        let ok = match writers {
            Need::Read => true,
            Need::Developer => self.admin() || self.has(&["space_developer"], "", space).await?,
            Need::AppManager => {
                self.admin() || self.has(&["space_developer", "space_supporter"], "", space).await?
            }
            Need::SpaceManager => {
                self.admin()
                    || self.has(&["space_manager"], "", space).await?
                    || self.has(&["organization_manager"], org, "").await?
            }
            Need::OrgManager => self.org_manager(org).await?,
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::NotAuthorized)
        }
    }

    /// Sees secrets (env vars, the generated manifest).
    pub async fn secrets_readable(&self, space: &str) -> ApiResult<bool> {
        Ok(self.admin()
            || self.claims.has_scope(auth::SCOPE_ADMIN_READ_ONLY)
            || self.has(&["space_developer"], "", space).await?)
    }

    /// Space guids the caller may read, or `None` for all (global readers).
    pub async fn visible_spaces(&self) -> ApiResult<Option<Vec<String>>> {
        if self.global_reader() {
            return Ok(None);
        }
        let roles = self.roles().await?;
        let mut spaces: Vec<String> =
            roles.iter().filter(|r| !r.space.is_empty()).map(|r| r.space.clone()).collect();
        for r in roles.iter().filter(|r| r.kind == "organization_manager") {
            spaces.extend(crate::store::spaces::guids_of_org(&self.db.pool, &r.org).await?);
        }
        spaces.sort();
        spaces.dedup();
        Ok(Some(spaces))
    }

    /// Org guids the caller may read, or `None` for all.
    pub async fn visible_orgs(&self) -> ApiResult<Option<Vec<String>>> {
        if self.global_reader() {
            return Ok(None);
        }
        let mut orgs: Vec<String> = self.roles().await?.iter().map(|r| r.org.clone()).collect();
        orgs.sort();
        orgs.dedup();
        Ok(Some(orgs))
    }
}

/// What a write needs besides read access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    /// Push, create/delete apps, packages, upload bits.
    Developer,
    /// Start/stop, scale, builds, droplets, env vars, route mapping: developer or supporter.
    AppManager,
    /// Update the space, assign space roles.
    SpaceManager,
    /// Create/delete spaces, org roles, private domains.
    OrgManager,
}
