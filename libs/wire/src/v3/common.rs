//! What every v3 resource shares: links, relationships,
//! metadata, lifecycle, timestamps, and the paginated list envelope with `included`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{App, Organization, Role, Route, ServiceInstance, Space, User};

/// `{"href": ..., "method"?: ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(default)]
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl Link {
    pub fn new(href: impl Into<String>) -> Self {
        Self { href: href.into(), method: None }
    }

    pub fn with_method(href: impl Into<String>, method: &str) -> Self {
        Self { href: href.into(), method: Some(method.to_owned()) }
    }
}

/// A resource's `links`, by name. Which names appear depends on the resource and its state
/// (a build links its droplet only once STAGED), so a map rather than a struct.
pub type Links = BTreeMap<String, Link>;

/// `{"guid": ...}`: a relationship's target, and the shape of a few plain references
/// (`build.package`, `build.droplet`, `destination.app`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guid {
    pub guid: String,
}

impl Guid {
    pub fn new(guid: impl Into<String>) -> Self {
        Self { guid: guid.into() }
    }
}

/// `{"data": {"guid": ...}}` or `{"data": null}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToOne {
    #[serde(default)]
    pub data: Option<Guid>,
}

impl ToOne {
    /// A relationship to `guid`, or `{"data": null}` when it is empty.
    pub fn of(guid: &str) -> Self {
        Self { data: (!guid.is_empty()).then(|| Guid::new(guid)) }
    }

    /// A relationship to `guid` even when it is empty (`{"data": {"guid": ""}}`).
    pub fn always(guid: &str) -> Self {
        Self { data: Some(Guid::new(guid)) }
    }

    /// The target's guid, if there is one.
    pub fn guid(&self) -> Option<&str> {
        self.data.as_ref().map(|d| d.guid.as_str())
    }
}

/// `{"data": [{"guid": ...}, ...]}`, with `links` when answered by a relationship endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToMany {
    #[serde(default)]
    pub data: Vec<Guid>,
    #[serde(default, skip_serializing_if = "Links::is_empty")]
    pub links: Links,
}

impl ToMany {
    pub fn of<'a>(guids: impl IntoIterator<Item = &'a str>) -> Self {
        Self { data: guids.into_iter().map(Guid::new).collect(), links: Links::new() }
    }
}

/// Labels and annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
}

/// `PATCH` of a resource's labels: `{"metadata": {"labels": {...}}}`, `null` removing one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelsUpdate {
    pub metadata: LabelsChange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelsChange {
    #[serde(default)]
    pub labels: BTreeMap<String, Option<String>>,
}

impl LabelsUpdate {
    pub fn new(labels: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        Self { metadata: LabelsChange { labels: labels.into_iter().collect() } }
    }
}

/// `PATCH` of an org, space, app or service instance that renames it: `{"name": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    pub name: String,
}

/// `{"type": "buildpack"|"docker"|"cnb", "data": {...}}` of apps, builds and droplets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub data: LifecycleData,
}

/// Buildpack lifecycle data; empty (`{}`) for docker apps and for droplets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpacks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl Lifecycle {
    pub fn buildpack(buildpacks: Vec<String>, stack: String) -> Self {
        Self {
            kind: "buildpack".into(),
            data: LifecycleData { buildpacks: Some(buildpacks), stack: Some(stack) },
        }
    }
}

/// A list's `pagination`: `first` and `last` always, `next`/`previous` `null` at the ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pagination {
    pub total_results: i64,
    pub total_pages: i64,
    pub first: Link,
    pub last: Link,
    pub next: Option<Link>,
    pub previous: Option<Link>,
}

/// One page of a list; `included` only with `include=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default = "Vec::new")]
    pub resources: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included: Option<Included>,
}

impl<T> Page<T> {
    /// Where the next page is, if there is one.
    pub fn next_href(&self) -> Option<&str> {
        self.pagination.next.as_ref().map(|l| l.href.as_str()).filter(|h| !h.is_empty())
    }
}

/// Resources named by `include=`, by the plural of the relationship.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Included {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<App>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spaces: Option<Vec<Space>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Vec<Organization>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<User>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_instances: Option<Vec<ServiceInstance>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_offerings: Option<Vec<super::ServiceOffering>>,
    /// Brokers as `fields[...service_broker]=name,guid` asks for them (`{guid, name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_brokers: Option<Vec<serde_json::Value>>,
}

/// `YYYY-MM-DDThh:mm:ssZ` for milliseconds since the epoch: second precision, as CC renders
/// `created_at` and `updated_at`.
pub fn timestamp(unix_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// `null` read as the type's default (CC writes `null` for some empty maps and lists).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// For `Option<Option<T>>` fields: absent → `None`, `null` → `Some(None)` (with
/// `#[serde(default, skip_serializing_if = "Option::is_none")]`, both survive a round trip).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn relationships_are_data_or_null() {
        assert_eq!(serde_json::to_string(&ToOne::of("")).expect("json"), r#"{"data":null}"#);
        assert_eq!(
            serde_json::to_string(&ToOne::of("g")).expect("json"),
            r#"{"data":{"guid":"g"}}"#
        );
        assert_eq!(ToOne::always("").guid(), Some(""));
        let missing: ToOne = serde_json::from_str("{}").expect("lenient");
        assert_eq!(missing.guid(), None);
        round_trip::<ToMany>(r#"{"data":[{"guid":"a"},{"guid":"b"}]}"#);
    }

    #[test]
    fn links_keep_their_method_only_when_given() {
        let links: Links = round_trip(
            r#"{"self":{"href":"https://api/v3/apps/g"},
                "start":{"href":"https://api/v3/apps/g/actions/start","method":"POST"}}"#,
        );
        assert_eq!(
            links["start"],
            Link::with_method("https://api/v3/apps/g/actions/start", "POST")
        );
    }

    #[test]
    fn pages_follow_next_and_end_with_null() {
        let page: Page<Guid> = round_trip(
            r#"{"pagination":{"total_results":3,"total_pages":2,
                "first":{"href":"https://api/v3/apps?page=1&per_page=2"},
                "last":{"href":"https://api/v3/apps?page=2&per_page=2"},
                "next":{"href":"https://api/v3/apps?page=2&per_page=2"},"previous":null},
                "resources":[{"guid":"a"},{"guid":"b"}]}"#,
        );
        assert_eq!(page.next_href(), Some("https://api/v3/apps?page=2&per_page=2"));
        let last: Page<Guid> = serde_json::from_str(
            r#"{"pagination":{"total_results":3,"total_pages":2,"next":null},"resources":[]}"#,
        )
        .expect("page");
        assert_eq!(last.next_href(), None);
        let bare: Page<Guid> =
            serde_json::from_str(r#"{"resources":[{"guid":"x"}]}"#).expect("page");
        assert_eq!(bare.resources.len(), 1);
    }

    #[test]
    fn label_changes_and_renames_round_trip() {
        let u: LabelsUpdate = round_trip(r#"{"metadata":{"labels":{"env":"prod","old":null}}}"#);
        assert_eq!(u.metadata.labels.get("old"), Some(&None));
        let built = LabelsUpdate::new([("env".to_owned(), Some("prod".to_owned()))]);
        assert_eq!(
            serde_json::to_string(&built).expect("json"),
            r#"{"metadata":{"labels":{"env":"prod"}}}"#
        );
        assert_eq!(round_trip::<Rename>(r#"{"name":"web2"}"#).name, "web2");
    }

    #[test]
    fn metadata_reads_null_maps_as_empty() {
        round_trip::<Metadata>(r#"{"labels":{"env":"prod"},"annotations":{}}"#);
        let m: Metadata = serde_json::from_str(r#"{"labels":null}"#).expect("lenient");
        assert_eq!(m, Metadata::default());
    }

    #[test]
    fn timestamps_have_second_precision_and_z() {
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
