//! One way to write a list endpoint, its steps in order: parse the query (CF's 400s for
//! unknown or invalid parameters), filter, authorize, read one page through a store function,
//! present it, and fill `included`. A list not read from a table (stacks, or one that is
//! always empty) uses `Query` alone.

use std::future::Future;

use wire::v3::{Included, Page};

use crate::error::ApiResult;
use crate::http::paging::ListQuery;
use crate::store::{Select, Window};
use crate::AppState;

/// The parsed query of a list and its absolute URL, which the page's links repeat.
#[derive(Debug, Clone)]
pub struct Query {
    q: ListQuery,
    base: String,
}

impl Query {
    /// Parse `raw` for the list at `path` below `/v3`, accepting `filters` besides the paging
    /// parameters and `orders` as `order_by` fields.
    pub fn parse(
        s: &AppState,
        raw: Option<&str>,
        path: &str,
        filters: &[&str],
        orders: &[&str],
    ) -> ApiResult<Self> {
        Self::at(format!("{}/{path}", s.v3()), raw, filters, orders)
    }

    fn at(base: String, raw: Option<&str>, filters: &[&str], orders: &[&str]) -> ApiResult<Self> {
        Ok(Self { q: ListQuery::parse(raw, filters, orders)?, base })
    }

    /// The values of the filter `name`, when it was given.
    pub fn filter(&self, name: &str) -> Option<&[String]> {
        self.q.filter(name)
    }

    /// The page of `total` results holding `items`.
    pub fn page<T>(&self, total: i64, items: Vec<T>) -> Page<T> {
        self.q.page(&self.base, total, items)
    }

    /// The requested page of a whole list held in memory (already filtered and in order).
    pub fn page_of<T>(&self, all: Vec<T>) -> Page<T> {
        let total = all.len() as i64;
        let per_page = usize::try_from(self.q.per_page).unwrap_or(usize::MAX);
        let skip = usize::try_from(self.q.page - 1).unwrap_or(0).saturating_mul(per_page);
        let items = all.into_iter().skip(skip).take(per_page).collect();
        self.q.page(&self.base, total, items)
    }

    /// The `order_by` field and whether it is descending (`-name`).
    pub fn order(&self) -> (&str, bool) {
        let o = self.q.order_by.as_str();
        o.strip_prefix('-').map_or((o, false), |f| (f, true))
    }
}

/// What a list reads: a table, or a store's select over it (with its joins). Its rows are
/// `<table>.guid` for a `label_selector`.
#[derive(Debug)]
pub struct Table {
    name: &'static str,
    sel: Select,
}

impl Table {
    /// A store's select over `name`, such as `store::services::select_bindings()`.
    pub fn with(name: &'static str, sel: Select) -> Self {
        Self { name, sel }
    }
}

impl From<&'static str> for Table {
    fn from(name: &'static str) -> Self {
        Self { name, sel: Select::from(name) }
    }
}

/// A list being built: its query, the store's select it restricts, and its URL.
#[derive(Debug)]
pub struct List {
    query: Query,
    sel: Select,
    /// `<table>.guid`, which a `label_selector` restricts when the page is read.
    guid: String,
}

impl List {
    /// Parse `raw` for the list at `path` below `/v3` reading `table`. A `label_selector`, when
    /// among the accepted `filters` and given, restricts the rows.
    pub fn parse(
        s: &AppState,
        raw: Option<&str>,
        path: &str,
        table: impl Into<Table>,
        filters: &[&str],
        orders: &[&str],
    ) -> ApiResult<Self> {
        Ok(Self::over(Query::parse(s, raw, path, filters, orders)?, table.into()))
    }

    fn over(query: Query, table: Table) -> Self {
        Self { query, sel: table.sel, guid: format!("{}.guid", table.name) }
    }

    /// The parsed query, for an endpoint's own parameters.
    pub fn query(&self) -> &ListQuery {
        &self.query.q
    }

    /// The select, for a restriction shared with a handler that shows one resource.
    pub fn select(&mut self) -> &mut Select {
        &mut self.sel
    }

    /// Take `values` as the filter `name` whatever the query said (the app of a nested list);
    /// the links repeat only what the client sent.
    pub fn set(mut self, name: &str, values: Vec<String>) -> Self {
        self.query.q.filters.insert(name.to_owned(), values);
        self
    }

    /// Order by `field` unless the client ordered by something other than `created_at`.
    pub fn default_order(mut self, field: &str) -> Self {
        if self.query.q.order_by == "created_at" {
            self.query.q.order_by = field.to_owned();
        }
        self
    }

    /// Add a join of the endpoint (`JOIN apps a ON ...`).
    pub fn join(mut self, sql: &str) -> Self {
        self.sel = self.sel.join(sql);
        self
    }

    /// `column IN (values of the filter name)`, when it was given.
    pub fn filter(mut self, name: &str, column: &str) -> Self {
        self.sel.filter(self.query.q.filter(name), column);
        self
    }

    /// `filter` with the values lowercased, for a column holding lowercased names.
    pub fn filter_lower(self, name: &str, column: &str) -> Self {
        let Some(values) = self.query.q.filter(name) else { return self };
        let lower: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
        self.any(column, &lower)
    }

    /// Restrict through `f` (a store function adding a join) with the filter's values, when
    /// it was given.
    pub fn filter_with(mut self, name: &str, f: impl FnOnce(Select, &[String]) -> Select) -> Self {
        if let Some(values) = self.query.q.filter(name) {
            self.sel = f(self.sel, values);
        }
        self
    }

    /// `column IN (values)`; an empty list matches nothing.
    pub fn any(mut self, column: &str, values: &[String]) -> Self {
        self.sel.any(column, values);
        self
    }

    /// Only rows whose `column` is among `visible` (`None`: the caller sees everything).
    pub fn visible(mut self, column: &str, visible: &Option<Vec<String>>) -> Self {
        self.sel.visible(column, visible);
        self
    }

    /// The select with the `label_selector` applied, and the query.
    fn finish(mut self) -> ApiResult<(Query, Select)> {
        crate::http::metadata::select(&mut self.sel, &self.query.q, &self.guid)?;
        Ok((self.query, self.sel))
    }

    /// Read the page through `read` (a store function: the total and the page's rows).
    pub async fn fetch<R>(
        self,
        read: impl AsyncFnOnce(&Select, &Window) -> ApiResult<(i64, Vec<R>)>,
    ) -> ApiResult<Rows<R>> {
        let (query, sel) = self.finish()?;
        let (total, rows) = read(&sel, &query.q.window()).await?;
        Ok(Rows { query, total, rows, included: None })
    }
}

/// One page of rows read, to present.
#[derive(Debug)]
pub struct Rows<R> {
    query: Query,
    total: i64,
    rows: Vec<R>,
    included: Option<Included>,
}

impl<R> Rows<R> {
    /// The rows read.
    pub fn rows(&self) -> &[R] {
        &self.rows
    }

    /// When the client asked for `include=`, what `f` finds for these rows and those values.
    pub async fn include(
        mut self,
        f: impl AsyncFnOnce(&[R], &[String]) -> ApiResult<Option<Included>>,
    ) -> ApiResult<Self> {
        if let Some(values) = self.query.filter("include") {
            self.included = f(&self.rows, values).await?;
        }
        Ok(self)
    }

    /// The page, each row presented by `f`.
    pub fn present<T>(self, f: impl FnMut(&R) -> T) -> Page<T> {
        let items = self.rows.iter().map(f).collect();
        self.into_page(items)
    }

    /// The page, each row presented in turn by `f`, which may read more.
    pub async fn present_async<T, F>(mut self, mut f: impl FnMut(R) -> F) -> ApiResult<Page<T>>
    where
        F: Future<Output = ApiResult<T>>,
    {
        let mut items = Vec::with_capacity(self.rows.len());
        for r in std::mem::take(&mut self.rows) {
            items.push(f(r).await?);
        }
        Ok(self.into_page(items))
    }

    fn into_page<T>(self, items: Vec<T>) -> Page<T> {
        let mut page = self.query.page(self.total, items);
        page.included = self.included;
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &str, filters: &[&str], table: &'static str) -> ApiResult<List> {
        let q = Query::at("http://api/v3/things".into(), Some(raw), filters, &["name"])?;
        Ok(List::over(q, table.into()))
    }

    fn sql(l: List) -> String {
        format!("{:?}", l.finish().expect("finish").1)
    }

    #[test]
    fn a_label_selector_is_applied_only_when_accepted_and_given() {
        let with = list("label_selector=env%3Dprod", &["label_selector"], "apps").expect("list");
        let s = sql(with);
        assert!(s.contains("apps.guid IN (SELECT resource_guid FROM resource_metadata"), "{s}");
        assert!(s.contains("Text(\"env\")") && s.contains("Text(\"prod\")"), "{s}");
        let absent = list("", &["label_selector"], "apps").expect("list");
        assert!(!sql(absent).contains("resource_metadata"));
        let refused = list("label_selector=env", &["names"], "apps").expect_err("unknown");
        assert!(refused.to_string().contains("'label_selector'"), "{refused}");
        let bad = list("label_selector=tier%20in%20web", &["label_selector"], "apps");
        assert!(bad.expect("list").finish().is_err());
    }

    #[test]
    fn filters_bind_their_values_and_skip_absent_ones() {
        let l = list("names=A,b&types=web", &["names", "types", "guids"], "apps")
            .expect("list")
            .filter("names", "name")
            .filter("guids", "guid")
            .filter_lower("types", "type_key")
            .visible("space_guid", &Some(vec!["s1".into()]));
        let s = sql(l);
        assert!(s.contains("name IN ($1, $2)"), "{s}");
        assert!(s.contains("type_key IN ($3)") && s.contains("Text(\"web\")"), "{s}");
        assert!(s.contains("space_guid IN ($4)"), "{s}");
        assert!(!s.contains("guid IN ($5") && !s.contains("'A'"), "{s}");
    }

    #[test]
    fn set_filters_override_the_query() {
        let l = list("app_guids=x", &["app_guids"], "routes")
            .expect("list")
            .set("app_guids", vec!["mine".into()])
            .filter("app_guids", "routes.app_guid");
        let s = sql(l);
        assert!(s.contains("Text(\"mine\")") && !s.contains("Text(\"x\")"), "{s}");
    }

    #[tokio::test]
    async fn the_base_url_and_the_filters_reach_the_links() {
        let l = list("names=a,b&per_page=2&page=2&order_by=-name", &["names", "include"], "apps")
            .expect("list")
            .set("guids", vec!["hidden".into()])
            .filter("names", "name");
        let rows = l
            .fetch(async |_, w: &Window| {
                assert_eq!((w.page, w.per_page, w.order_by.as_str()), (2, 2, "-name"));
                Ok((5, vec![1, 2]))
            })
            .await
            .expect("rows");
        let page = rows.include(async |_, _| panic!("no include asked")).await.expect("rows");
        let page = page.present(|n| n * 10);
        assert_eq!(page.resources, [10, 20]);
        assert!(page.included.is_none());
        let v = serde_json::to_value(&page).expect("json");
        let next = v["pagination"]["next"]["href"].as_str().expect("next");
        assert!(next.starts_with("http://api/v3/things?page=3&per_page=2"), "{next}");
        assert!(next.contains("names=a%2Cb") && next.contains("order_by=-name"), "{next}");
        assert!(!next.contains("hidden"), "{next}");
    }

    #[tokio::test]
    async fn include_runs_with_the_asked_values_and_default_order_yields_to_the_client() {
        let l = list("include=space", &["include"], "apps").expect("list").default_order("name");
        let rows = l
            .fetch(async |_, w: &Window| {
                assert_eq!(w.order_by, "name");
                Ok((1, vec!["r"]))
            })
            .await
            .expect("rows")
            .include(async |rows: &[&str], inc: &[String]| {
                assert_eq!((rows, inc), (&["r"][..], &["space".to_owned()][..]));
                Ok(Some(Included::default()))
            })
            .await
            .expect("include");
        let page = rows.present_async(|r| async move { Ok(r.len()) }).await.expect("page");
        assert!(page.included.is_some());
        let ordered = list("order_by=-name", &[], "apps").expect("list").default_order("position");
        assert_eq!(ordered.query().order_by, "-name");
    }

    #[test]
    fn a_query_alone_pages_what_it_is_given() {
        let q = Query::at("http://api/v3/stacks".into(), Some("names=x"), &["names"], &[])
            .expect("query");
        assert_eq!(q.filter("names").expect("names"), ["x"]);
        let page = q.page(0, Vec::<()>::new());
        assert_eq!(page.pagination.total_pages, 1);
        assert!(page.pagination.first.href.starts_with("http://api/v3/stacks?page=1"));
    }
}
