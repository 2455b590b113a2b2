//! Roles and users.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata, ToOne};

/// A user's role in an organization or a space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// `organization_manager`, `space_developer`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub relationships: RoleRelationships,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRelationships {
    #[serde(default)]
    pub user: ToOne,
    #[serde(default)]
    pub organization: ToOne,
    #[serde(default)]
    pub space: ToOne,
}

/// `POST /v3/roles`: the user by guid or by name and origin; the organization or the space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCreate {
    #[serde(rename = "type")]
    pub kind: String,
    pub relationships: RoleCreateRelationships,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCreateRelationships {
    pub user: RoleUser,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<ToOne>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<ToOne>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleUser {
    pub data: UserRef,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl RoleCreate {
    /// `kind` for the UAA user `username` in the organization or space `scope` (`"organization"`
    /// or `"space"`) with guid `target`.
    pub fn for_username(kind: &str, username: &str, scope: &str, target: &str) -> Self {
        let user = RoleUser {
            data: UserRef {
                guid: None,
                username: Some(username.to_owned()),
                origin: Some("uaa".into()),
            },
        };
        let to = Some(ToOne::of(target));
        let (organization, space) = if scope == "space" { (None, to) } else { (to, None) };
        Self {
            kind: kind.to_owned(),
            relationships: RoleCreateRelationships { user, organization, space },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// `null` for clients.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub presentation_name: String,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// `POST /v3/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreate {
    pub guid: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn roles_and_users_round_trip() {
        let r: Role = round_trip(
            r#"{"guid": "r-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "type": "space_developer",
                "relationships": {"user": {"data": {"guid": "u-1"}}, "organization": {"data": null}, "space": {"data": {"guid": "s-1"}}},
                "links": {"self": {"href": "https://api.example.com/v3/roles/r-1"},
                          "user": {"href": "https://api.example.com/v3/users/u-1"},
                          "space": {"href": "https://api.example.com/v3/spaces/s-1"}}}"#,
        );
        assert_eq!(r.relationships.user.guid(), Some("u-1"));
        let u: User = round_trip(
            r#"{"guid": "u-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "username": "dev1", "presentation_name": "dev1", "origin": "uaa",
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/users/u-1"}}}"#,
        );
        assert_eq!(u.username.as_deref(), Some("dev1"));
    }

    #[test]
    fn a_role_is_created_for_a_user_name() {
        let body = RoleCreate::for_username("space_developer", "dev1", "space", "s-1");
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"type":"space_developer","relationships":{"user":{"data":{"username":"dev1","origin":"uaa"}},"space":{"data":{"guid":"s-1"}}}}"#
        );
    }
}
