//! A small SQL builder for lists: filters become `IN` lists with every value bound, pages
//! become `ORDER BY ... LIMIT ... OFFSET`, so no request text ever reaches the SQL.

use sqlx::any::AnyRow;

use crate::error::{ApiError, ApiResult};

/// One page of a list: which page, its size, and the order (`name`, `-created_at`, ...). The
/// order field has been checked against the endpoint's allowed fields before it gets here.
#[derive(Debug, Clone)]
pub struct Window {
    pub page: i64,
    pub per_page: i64,
    pub order_by: String,
}

impl Window {
    pub fn order_sql(&self, table: &str) -> String {
        let desc = self.order_by.starts_with('-');
        let field = self.order_by.trim_start_matches(['-', '+']);
        let dir = if desc { "DESC" } else { "ASC" };
        format!("ORDER BY {table}.{field} {dir}, {table}.guid {dir}")
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

    /// `(a IN (values) OR b IN (<sub>))` where `sub` is a sub-select whose `{}` takes the
    /// values again; an empty list matches nothing.
    pub fn any_or_sub(&mut self, a: &str, b: &str, sub: &str, values: &[String]) -> &mut Self {
        if values.is_empty() {
            self.wheres.push("1 = 0".into());
            return self;
        }
        let m1: Vec<String> = values.iter().map(|v| self.next(Arg::Text(v.clone()))).collect();
        let m2: Vec<String> = values.iter().map(|v| self.next(Arg::Text(v.clone()))).collect();
        let sub = sub.replace("{}", &m2.join(", "));
        self.wheres.push(format!("({a} IN ({}) OR {b} IN ({sub}))", m1.join(", ")));
        self
    }

    /// `column IN (values)` when a filter was given.
    pub fn filter(&mut self, values: Option<&[String]>, column: &str) -> &mut Self {
        if let Some(v) = values {
            self.any(column, v);
        }
        self
    }

    /// Rows recorded after the row `guid` of this table (by `created_at`, then `guid`); an
    /// unknown guid matches nothing.
    pub fn after(&mut self, guid: &str) -> &mut Self {
        let t = self.table;
        let m = self.next(Arg::Text(guid.to_owned()));
        self.wheres.push(format!(
            "EXISTS (SELECT 1 FROM {t} a WHERE a.guid = {m} AND ({t}.created_at > a.created_at \
             OR ({t}.created_at = a.created_at AND {t}.guid > a.guid)))"
        ));
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

    /// [`Select::page`] with every row decoded by `decode`.
    pub async fn page_of<T, E>(
        &self,
        db: &kit::db::Db,
        w: &Window,
        decode: impl Fn(&AnyRow) -> Result<T, E>,
    ) -> ApiResult<(i64, Vec<T>)>
    where
        ApiError: From<E>,
    {
        let (total, rows) = self.page(db, w).await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<T>, E>>()?;
        Ok((total, items))
    }

    /// Total count and the rows of the requested page.
    pub async fn page(&self, db: &kit::db::Db, q: &Window) -> ApiResult<(i64, Vec<AnyRow>)> {
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
