//! List queries and pages: query parsing with CF's rules (unknown
//! parameters are a 400, lists are comma-separated), and the typed page with absolute links
//! that repeat every filter.

use std::collections::BTreeMap;

use wire::v3::{Link, Page, Pagination};

use crate::error::{ApiError, ApiResult};
use crate::store::Window;

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

    /// The page, size and order the store reads.
    pub fn window(&self) -> Window {
        Window { page: self.page, per_page: self.per_page, order_by: self.order_by.clone() }
    }

    fn href(&self, base: &str, page: i64) -> Link {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("page", &page.to_string());
        ser.append_pair("per_page", &self.per_page.to_string());
        for (k, v) in &self.raw {
            if k != "page" && k != "per_page" {
                ser.append_pair(k, v);
            }
        }
        Link::new(format!("{base}?{}", ser.finish()))
    }

    /// One page of `total` results: the list envelope with absolute links that repeat every
    /// filter, `next` and `previous` null at the ends.
    pub fn page<T>(&self, base: &str, total: i64, resources: Vec<T>) -> Page<T> {
        let pages = ((total + self.per_page - 1) / self.per_page).max(1);
        Page {
            pagination: Pagination {
                total_results: total,
                total_pages: pages,
                first: self.href(base, 1),
                last: self.href(base, pages),
                next: (self.page < pages).then(|| self.href(base, self.page + 1)),
                previous: (self.page > 1).then(|| self.href(base, self.page - 1)),
            },
            resources,
            included: None,
        }
    }
}

fn positive(k: &str, v: &str) -> ApiResult<i64> {
    match v.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::BadQuery(format!("{k} must be a positive integer, not '{v}'"))),
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
        let v = serde_json::to_value(q.page::<()>("http://api/v3/apps", 5, vec![])).expect("json");
        assert_eq!(v["pagination"]["total_pages"], 3);
        let next = v["pagination"]["next"]["href"].as_str().expect("test value");
        assert!(next.starts_with("http://api/v3/apps?page=3&per_page=2"), "{next}");
        assert!(next.contains("names=a%2Cb"), "{next}");
        let last =
            serde_json::to_value(q.page::<()>("http://api/v3/apps", 4, vec![])).expect("json");
        assert!(last["pagination"]["next"].is_null());
        assert!(last["pagination"]["previous"].is_object());
        assert_eq!(q.page::<()>("x", 0, vec![]).pagination.total_pages, 1);
    }

    #[test]
    fn bad_paging_values_are_400() {
        assert!(ListQuery::parse(Some("page=0"), &[], &[]).is_err());
        assert!(ListQuery::parse(Some("per_page=5001"), &[], &[]).is_err());
        assert!(ListQuery::parse(Some("order_by=-colour"), &[], &["name"]).is_err());
        let q = ListQuery::parse(Some("order_by=-name"), &[], &["name"]).expect("test value");
        assert_eq!(q.window().order_sql("apps"), "ORDER BY apps.name DESC, apps.guid DESC");
    }
}
