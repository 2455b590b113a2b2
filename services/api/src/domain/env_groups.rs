//! CC's environment variable groups (docs/api.md): variables an admin sets for every app —
//! `running` for instances and tasks, `staging` for stagings. An app's own variables win over
//! a group's; a change reaches instances at their next restart (stagings at the next one), as
//! in CF.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, now_ms};
use crate::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Running,
    Staging,
}

impl Group {
    pub fn parse(name: &str) -> ApiResult<Self> {
        match name {
            "running" => Ok(Self::Running),
            "staging" => Ok(Self::Staging),
            _ => Err(ApiError::NotFound("Environment variable group")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Staging => "staging",
        }
    }
}

/// A group's variables and when an admin last changed them (`None`: never).
pub async fn get(s: &AppState, g: Group) -> ApiResult<(BTreeMap<String, String>, Option<i64>)> {
    Ok(match store::env_groups::find(&s.db.pool, g.name()).await? {
        Some((vars, at)) => (vars, Some(at)),
        None => (BTreeMap::new(), None),
    })
}

/// An admin's change: each variable given is set (a string) or removed (`null`).
pub async fn update(
    s: &AppState,
    c: &Caller,
    g: Group,
    patch: &Map<String, Value>,
) -> ApiResult<(BTreeMap<String, String>, Option<i64>)> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let (mut vars, _) = get(s, g).await?;
    for (k, v) in patch {
        if k.is_empty() || k.starts_with("VCAP_") || k == "PORT" {
            return Err(ApiError::Unprocessable(format!(
                "Environment variable '{k}' cannot be empty, start with VCAP_ or be PORT"
            )));
        }
        match v {
            Value::Null => {
                vars.remove(k);
            }
            Value::String(text) => {
                vars.insert(k.clone(), text.clone());
            }
            _ => {
                return Err(ApiError::Unprocessable(format!(
                    "Environment variable '{k}' must be a string or null"
                )))
            }
        }
    }
    let now = now_ms();
    store::env_groups::save(&s.db.pool, g.name(), &vars, now).await?;
    Ok((vars, Some(now)))
}

/// The environment of an app's instance, task or staging: the group's variables under the
/// app's own.
pub async fn with_group(
    s: &AppState,
    g: Group,
    app_env: &BTreeMap<String, String>,
) -> ApiResult<BTreeMap<String, String>> {
    let (mut env, _) = get(s, g).await?;
    env.extend(app_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}
