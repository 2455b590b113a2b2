//! Feature flags (docs/api.md, "Feature flags"): Cloud Controller's platform-wide switches with
//! their defaults, an admin's changes, and the check the gated actions make.
//!
//! Only the flags whose feature exists here are known; CC's others (the hiding of the
//! marketplace from guests, cloud native buildpacks, and the v2-only `unset_roles_by_username`) join
//! with their features. A disabled flag refuses the action with `CF-FeatureDisabled` — admins
//! pass every flag but `diego_docker`, `env_var_visibility` and `service_instance_sharing`.

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, feature_flags::Stored, now_ms};
use crate::AppState;

/// A known flag; `name` is CC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Any user may create an org (and becomes its manager).
    UserOrgCreation,
    /// Org managers may create private domains.
    PrivateDomainCreation,
    /// Space developers may upload app bits.
    AppBitsUpload,
    /// Space developers may scale processes.
    AppScaling,
    /// Space developers may create routes.
    RouteCreation,
    /// Space developers may create service instances.
    ServiceInstanceCreation,
    /// Space developers may share service instances into other spaces (off by default).
    ServiceInstanceSharing,
    /// Apps may run Docker images (admins included).
    DiegoDocker,
    /// Org and space managers may give roles by user name.
    SetRolesByUsername,
    /// Space developers may run tasks.
    TaskCreation,
    /// Anyone but an admin may read an app's environment (`/v3/apps/:guid/env`).
    EnvVarVisibility,
    /// Space developers may read an app's environment.
    SpaceDeveloperEnvVarVisibility,
    /// Uploads skip the files the platform has already (`/v3/resource_matches` answers them).
    ResourceMatching,
}

impl Flag {
    /// Every flag, in CC's order.
    pub const ALL: [Flag; 13] = [
        Flag::UserOrgCreation,
        Flag::PrivateDomainCreation,
        Flag::AppBitsUpload,
        Flag::AppScaling,
        Flag::RouteCreation,
        Flag::ServiceInstanceCreation,
        Flag::ServiceInstanceSharing,
        Flag::DiegoDocker,
        Flag::SetRolesByUsername,
        Flag::TaskCreation,
        Flag::EnvVarVisibility,
        Flag::SpaceDeveloperEnvVarVisibility,
        Flag::ResourceMatching,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flag::UserOrgCreation => "user_org_creation",
            Flag::PrivateDomainCreation => "private_domain_creation",
            Flag::AppBitsUpload => "app_bits_upload",
            Flag::AppScaling => "app_scaling",
            Flag::RouteCreation => "route_creation",
            Flag::ServiceInstanceCreation => "service_instance_creation",
            Flag::ServiceInstanceSharing => "service_instance_sharing",
            Flag::DiegoDocker => "diego_docker",
            Flag::SetRolesByUsername => "set_roles_by_username",
            Flag::TaskCreation => "task_creation",
            Flag::EnvVarVisibility => "env_var_visibility",
            Flag::SpaceDeveloperEnvVarVisibility => "space_developer_env_var_visibility",
            Flag::ResourceMatching => "resource_matching",
        }
    }

    /// CC's default.
    pub fn default_enabled(self) -> bool {
        !matches!(self, Flag::UserOrgCreation | Flag::DiegoDocker | Flag::ServiceInstanceSharing)
    }

    /// Whether an admin passes the flag when it is off.
    pub fn admin_passes(self) -> bool {
        !matches!(self, Flag::DiegoDocker | Flag::EnvVarVisibility | Flag::ServiceInstanceSharing)
    }

    pub fn parse(name: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A flag as it stands: its default until an admin changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub flag: Flag,
    pub enabled: bool,
    pub custom_error_message: Option<String>,
    /// When an admin last changed it (ms).
    pub updated_at: Option<i64>,
}

impl State {
    fn of(flag: Flag, stored: Option<&Stored>) -> Self {
        match stored {
            Some(s) => Self {
                flag,
                enabled: s.enabled,
                custom_error_message: s.custom_error_message.clone(),
                updated_at: Some(s.updated_at),
            },
            None => Self {
                flag,
                enabled: flag.default_enabled(),
                custom_error_message: None,
                updated_at: None,
            },
        }
    }

    /// The refusal of an action it gates: CC's `Feature Disabled: <name or message>`.
    fn refusal(&self) -> ApiError {
        ApiError::FeatureDisabled(
            self.custom_error_message.clone().unwrap_or_else(|| self.flag.name().to_owned()),
        )
    }
}

/// Every known flag, in CC's order.
pub async fn list(s: &AppState) -> ApiResult<Vec<State>> {
    let stored = store::feature_flags::list(&s.db.pool).await?;
    Ok(Flag::ALL
        .into_iter()
        .map(|f| State::of(f, stored.iter().find(|s| s.name == f.name())))
        .collect())
}

/// One flag by its CC name.
pub async fn get(s: &AppState, name: &str) -> ApiResult<State> {
    let flag = Flag::parse(name).ok_or(ApiError::NotFound("Feature flag"))?;
    state(s, flag).await
}

pub async fn state(s: &AppState, flag: Flag) -> ApiResult<State> {
    let stored = store::feature_flags::find(&s.db.pool, flag.name()).await?;
    Ok(State::of(flag, stored.as_ref()))
}

/// An admin changes a flag: `enabled` and the message when given (`Some(None)` clears it).
pub async fn update(
    s: &AppState,
    c: &Caller,
    name: &str,
    enabled: Option<bool>,
    message: Option<Option<String>>,
) -> ApiResult<State> {
    let flag = Flag::parse(name).ok_or(ApiError::NotFound("Feature flag"))?;
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    if let Some(Some(m)) = &message {
        if m.trim().is_empty() || m.chars().any(char::is_control) || m.len() > 250 {
            return Err(ApiError::Unprocessable(
                "Custom error message must be 1 to 250 printable characters".into(),
            ));
        }
    }
    let now = state(s, flag).await?;
    let stored = Stored {
        name: flag.name().to_owned(),
        enabled: enabled.unwrap_or(now.enabled),
        custom_error_message: message.unwrap_or(now.custom_error_message),
        updated_at: now_ms(),
    };
    store::feature_flags::save(&s.db.pool, &stored).await?;
    Ok(State::of(flag, Some(&stored)))
}

/// Refuse the action `flag` gates when it is off (an admin passes most flags).
pub async fn require(s: &AppState, c: &Caller, flag: Flag) -> ApiResult<()> {
    if flag.admin_passes() && c.admin() {
        return Ok(());
    }
    require_on(s, flag).await
}

/// Refuse whoever asks when `flag` is off (for checks made where no caller is at hand, and
/// for the flags an admin does not pass).
pub async fn require_on(s: &AppState, flag: Flag) -> ApiResult<()> {
    let st = state(s, flag).await?;
    if st.enabled {
        Ok(())
    } else {
        Err(st.refusal())
    }
}

/// Whether `flag` is on (for a flag that changes an answer instead of refusing).
pub async fn enabled(s: &AppState, flag: Flag) -> ApiResult<bool> {
    Ok(state(s, flag).await?.enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_defaults_are_ccs() {
        for f in Flag::ALL {
            assert_eq!(Flag::parse(f.name()), Some(f));
        }
        assert_eq!(Flag::parse("no_such_flag"), None);
        let off: Vec<&str> =
            Flag::ALL.into_iter().filter(|f| !f.default_enabled()).map(Flag::name).collect();
        assert_eq!(off, ["user_org_creation", "service_instance_sharing", "diego_docker"]);
    }

    #[test]
    fn a_refusal_names_the_flag_or_says_the_admins_message() {
        let mut st = State::of(Flag::TaskCreation, None);
        assert_eq!(st.refusal().to_string(), "Feature Disabled: task_creation");
        st.custom_error_message = Some("tasks are paused until Monday".into());
        assert_eq!(st.refusal().to_string(), "Feature Disabled: tasks are paused until Monday");
    }
}
