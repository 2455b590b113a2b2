//! Isolation segments (docs/api.md): every cell serves CC's one `shared` segment, which every
//! org is entitled to and which no org or space names as its own (`data: null`, as in CC when
//! none is set). cf's `org` and `space` read these.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::isolation_segment::{
    IsolationSegment, IsolationSegmentRelationship, SHARED_GUID, SHARED_NAME,
};
use wire::v3::{Link, Metadata, Page};

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::list::Query;
use crate::http::util::{links, ts};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/isolation_segments", get(list))
        .route("/v3/isolation_segments/{guid}", get(show))
        .route("/v3/organizations/{guid}/relationships/default_isolation_segment", get(org_default))
        .route("/v3/spaces/{guid}/relationships/isolation_segment", get(space_segment))
}

fn shared(s: &AppState) -> IsolationSegment {
    IsolationSegment {
        guid: SHARED_GUID.into(),
        name: SHARED_NAME.into(),
        created_at: ts(0),
        updated_at: ts(0),
        metadata: Metadata::default(),
        links: links([("self", Link::new(format!("{}/isolation_segments/{SHARED_GUID}", s.v3())))]),
    }
}

/// The shared segment, to those it is visible to: admins, and members of an org (all are
/// entitled to it), subject to the filters.
async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<IsolationSegment>>> {
    const FILTERS: [&str; 3] = ["guids", "names", "organization_guids"];
    let q = Query::parse(&s, q.as_deref(), "isolation_segments", &FILTERS, &["name"])?;
    let visible = match c.visible_orgs().await? {
        None => true,
        Some(orgs) => match q.filter("organization_guids") {
            Some(asked) => asked.iter().any(|o| orgs.contains(o)),
            None => !orgs.is_empty(),
        },
    };
    let pass =
        |filter: &str, value: &str| q.filter(filter).is_none_or(|f| f.iter().any(|v| v == value));
    let all = if visible && pass("guids", SHARED_GUID) && pass("names", SHARED_NAME) {
        vec![shared(&s)]
    } else {
        vec![]
    };
    Ok(Json(q.page_of(all)))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<IsolationSegment>> {
    let visible = c.visible_orgs().await?.is_none_or(|orgs| !orgs.is_empty());
    if guid != SHARED_GUID || !visible {
        return Err(ApiError::NotFound("Isolation segment"));
    }
    Ok(Json(shared(&s)))
}

fn none(href: String) -> Json<IsolationSegmentRelationship> {
    Json(IsolationSegmentRelationship { data: None, links: links([("self", Link::new(href))]) })
}

async fn org_default(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<IsolationSegmentRelationship>> {
    let org = crate::http::orgs::readable(&s, &c, &guid).await?;
    Ok(none(format!(
        "{}/organizations/{}/relationships/default_isolation_segment",
        s.v3(),
        org.guid
    )))
}

async fn space_segment(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<IsolationSegmentRelationship>> {
    let space = crate::http::spaces::require(&s, &c, &guid, Need::Read).await?;
    Ok(none(format!("{}/spaces/{}/relationships/isolation_segment", s.v3(), space.guid)))
}
