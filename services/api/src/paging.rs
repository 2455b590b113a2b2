//! List endpoints (contracts/ccapi.md §4.1-4.2): query parsing with CF's rules (unknown
//! parameters are a 400, lists are comma-separated), a small SQL builder binding every value,
//! and the pagination envelope with absolute links that repeat every filter.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sqlx::any::AnyRow;

use crate::error::{ApiError, ApiResult};

const MAX_PER_PAGE: i64 = 5000;

/// A parsed list query: paging, order and the endpoint's filters.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub page: i64,
    pub per_page: i64,
    /// Column and direction; `created_at` ascending by default.
    pub order_by: String,
    pub filters: BTreeMap<String, Vec<String>>,
    /// Every accepted parameter, to repeat in the links.
    raw: Vec<(String, String)>,
}

impl ListQuery {
    /// Parse `query` accepting `filters` besides the common parameters; `orders` are the
    /// accepted `order_by` fields.
    pub fn parse(query: Option<&str>, filters: &[&str], orders: &[&str]) -> ApiResult<Self> {
        let mut q = ListQuery {
            page: 1,
            per_page: 50,
            order_by: "created_at".into(),
            filters: BTreeMap::new(),
            raw: Vec::new(),
        };
        let mut unknown = Vec::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            match k.as_str() {
                "page" => q.page = positive(&k, &v)?,
                "per_page" => {
                    q.per_page = positive(&k, &v)?;
                    if q.per_page > MAX_PER_PAGE {
                        return Err(ApiError::BadQuery(format!(
                            "Per page must be between 1 and {MAX_PER_PAGE}"
                        )));
                    }
                }
                "order_by" => {
                    let field = v.trim_start_matches(['-', '+']);
                    if !orders.contains(&field) && field != "created_at" && field != "updated_at" {
                        return Err(ApiError::BadQuery(format!(
                            "Order by can only be: {}",
                            ["created_at", "updated_at"]
                                .iter()
                                .chain(orders)
                                .map(|o| format!("'{o}'"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    q.order_by = v.clone();
                }
                _ if filters.contains(&k.as_str()) => {
                    let values = v.split(',').map(str::to_owned).collect();
                    q.filters.insert(k.clone(), values);
                }
                _ => {
                    unknown.push(format!("'{k}'"));
                    continue;
                }
            }
            q.raw.push((k, v));
        }
        if !unknown.is_empty() {
            return Err(ApiError::BadQuery(format!(
                "Unknown query parameter(s): {}. Valid parameters are: {}",
                unknown.join(", "),
                ["page", "per_page", "order_by"]
                    .iter()
                    .chain(filters)
                    .map(|f| format!("'{f}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(q)
    }

    pub fn filter(&self, name: &str) -> Option<&[String]> {
        self.filters.get(name).map(Vec::as_slice)
    }

    fn order_sql(&self, table: &str) -> String {
        let desc = self.order_by.starts_with('-');
        let field = self.order_by.trim_start_matches(['-', '+']);
        let dir = if desc { "DESC" } else { "ASC" };
        format!("ORDER BY {table}.{field} {dir}, {table}.guid {dir}")
    }

    fn href(&self, base: &str, page: i64) -> Value {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("page", &page.to_string());
        ser.append_pair("per_page", &self.per_page.to_string());
        for (k, v) in &self.raw {
            if k != "page" && k != "per_page" {
                ser.append_pair(k, v);
            }
        }
        json!({ "href": format!("{base}?{}", ser.finish()) })
    }

    /// The list envelope for one page of `total` results.
    pub fn envelope(&self, base: &str, total: i64, resources: Vec<Value>) -> Value {
        let pages = ((total + self.per_page - 1) / self.per_page).max(1);
        let next = if self.page < pages { self.href(base, self.page + 1) } else { Value::Null };
        let prev = if self.page > 1 { self.href(base, self.page - 1) } else { Value::Null };
        json!({
            "pagination": {
                "total_results": total, "total_pages": pages,
                "first": self.href(base, 1), "last": self.href(base, pages),
                "next": next, "previous": prev,
            },
            "resources": resources,
        })
    }
}

fn positive(k: &str, v: &str) -> ApiResult<i64> {
    match v.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::BadQuery(format!("{k} must be a positive integer, not '{v}'"))),
    }
}

/// A bound SQL value.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
}

/// `SELECT ... FROM <table> WHERE ...` built from filters; every value is bound.
#[derive(Debug, Clone)]
pub struct Select {
    table: &'static str,
    joins: String,
    wheres: Vec<String>,
    args: Vec<Arg>,
}

impl Select {
    pub fn from(table: &'static str) -> Self {
        Self { table, joins: String::new(), wheres: Vec::new(), args: Vec::new() }
    }

    pub fn join(mut self, sql: &str) -> Self {
        self.joins.push(' ');
        self.joins.push_str(sql);
        self
    }

    fn next(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    /// `column IN (values)`; an empty list matches nothing.
    pub fn any(&mut self, column: &str, values: &[String]) -> &mut Self {
        if values.is_empty() {
            self.wheres.push("1 = 0".into());
            return self;
        }
        let marks: Vec<String> = values.iter().map(|v| self.next(Arg::Text(v.clone()))).collect();
        self.wheres.push(format!("{column} IN ({})", marks.join(", ")));
        self
    }

    /// `(a IN (xs) OR b IN (ys))`; empty lists match nothing.
    pub fn any_or(&mut self, a: &str, xs: &[String], b: &str, ys: &[String]) -> &mut Self {
        let mut parts = Vec::new();
        for (col, vals) in [(a, xs), (b, ys)] {
            if !vals.is_empty() {
                let m: Vec<String> = vals.iter().map(|v| self.next(Arg::Text(v.clone()))).collect();
                parts.push(format!("{col} IN ({})", m.join(", ")));
            }
        }
        if parts.is_empty() {
            self.wheres.push("1 = 0".into());
        } else {
            self.wheres.push(format!("({})", parts.join(" OR ")));
        }
        self
    }

    /// `column IN (values)` when the filter is present.
    pub fn filter(&mut self, q: &ListQuery, name: &str, column: &str) -> &mut Self {
        if let Some(v) = q.filter(name) {
            let v = v.to_vec();
            self.any(column, &v);
        }
        self
    }

    pub fn eq(&mut self, column: &str, value: &str) -> &mut Self {
        let m = self.next(Arg::Text(value.to_owned()));
        self.wheres.push(format!("{column} = {m}"));
        self
    }

    /// Restrict to visible guids (`None` = everything visible).
    pub fn visible(&mut self, column: &str, visible: &Option<Vec<String>>) -> &mut Self {
        if let Some(v) = visible {
            let v = v.clone();
            self.any(column, &v);
        }
        self
    }

    fn where_sql(&self) -> String {
        if self.wheres.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.wheres.join(" AND "))
        }
    }

    fn bind<'q>(
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        args: &'q [Arg],
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        args.iter().fold(q, |q, a| match a {
            Arg::Text(s) => q.bind(s.as_str()),
        })
    }

    /// Total count and the rows of the requested page.
    pub async fn page(&self, db: &kit::db::Db, q: &ListQuery) -> ApiResult<(i64, Vec<AnyRow>)> {
        let t = self.table;
        let count_sql = format!("SELECT COUNT(*) AS n FROM {t}{}{}", self.joins, self.where_sql());
        let total: i64 = {
            use sqlx::Row as _;
            let row = Self::bind(sqlx::query(&count_sql), &self.args).fetch_one(&db.pool).await?;
            row.try_get("n")?
        };
        let offset = (q.page - 1).saturating_mul(q.per_page);
        let sql = format!(
            "SELECT {t}.* FROM {t}{}{} {} LIMIT {} OFFSET {}",
            self.joins,
            self.where_sql(),
            q.order_sql(t),
            q.per_page,
            offset
        );
        let rows = Self::bind(sqlx::query(&sql), &self.args).fetch_all(&db.pool).await?;
        Ok((total, rows))
    }

    /// `column` is (not, with `negate`) a resource with label `key` (with one of `values`).
    pub fn label(
        &mut self,
        column: &str,
        negate: bool,
        key: &str,
        values: Option<&[String]>,
    ) -> &mut Self {
        let k = self.next(Arg::Text(key.to_owned()));
        let mut sub = format!(
            "SELECT resource_guid FROM resource_metadata WHERE kind = 'label' AND key = {k}"
        );
        if let Some(vals) = values {
            let marks: Vec<String> = vals.iter().map(|v| self.next(Arg::Text(v.clone()))).collect();
            sub.push_str(&format!(" AND value IN ({})", marks.join(", ")));
        }
        let op = if negate { "NOT IN" } else { "IN" };
        self.wheres.push(format!("{column} {op} ({sub})"));
        self
    }

    /// Every matching row, in no particular order.
    pub async fn all_unordered(&self, db: &kit::db::Db) -> ApiResult<Vec<AnyRow>> {
        let t = self.table;
        let sql = format!("SELECT {t}.* FROM {t}{}{}", self.joins, self.where_sql());
        Ok(Self::bind(sqlx::query(&sql), &self.args).fetch_all(&db.pool).await?)
    }

    /// Every matching row, in creation order.
    pub async fn all(&self, db: &kit::db::Db) -> ApiResult<Vec<AnyRow>> {
        let t = self.table;
        let sql = format!(
            "SELECT {t}.* FROM {t}{}{} ORDER BY {t}.created_at, {t}.guid",
            self.joins,
            self.where_sql()
        );
        Ok(Self::bind(sqlx::query(&sql), &self.args).fetch_all(&db.pool).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_refused_by_name() {
        let e = ListQuery::parse(Some("names=a&colour=red"), &["names"], &["name"])
            .expect_err("must fail");
        assert!(e.to_string().contains("'colour'"), "{e}");
    }

    #[test]
    fn envelope_links_repeat_filters_and_end_with_null() {
        let q = ListQuery::parse(Some("names=a,b&per_page=2&page=2"), &["names"], &[])
            .expect("test value");
        assert_eq!(q.filter("names").expect("test value"), ["a", "b"]);
        let v = q.envelope("http://api/v3/apps", 5, vec![]);
        assert_eq!(v["pagination"]["total_pages"], 3);
        let next = v["pagination"]["next"]["href"].as_str().expect("test value");
        assert!(next.starts_with("http://api/v3/apps?page=3&per_page=2"), "{next}");
        assert!(next.contains("names=a%2Cb"), "{next}");
        let last = q.envelope("http://api/v3/apps", 4, vec![]);
        assert!(last["pagination"]["next"].is_null());
        assert_eq!(q.envelope("x", 0, vec![])["pagination"]["total_pages"], 1);
    }

    #[test]
    fn bad_paging_values_are_400() {
        assert!(ListQuery::parse(Some("page=0"), &[], &[]).is_err());
        assert!(ListQuery::parse(Some("per_page=5001"), &[], &[]).is_err());
        assert!(ListQuery::parse(Some("order_by=-colour"), &[], &["name"]).is_err());
        let q = ListQuery::parse(Some("order_by=-name"), &[], &["name"]).expect("test value");
        assert_eq!(q.order_sql("apps"), "ORDER BY apps.name DESC, apps.guid DESC");
    }
}
