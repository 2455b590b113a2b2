//! The scheduler's storage: desired LRPs, actual LRPs and cells, on SQLite or PostgreSQL.

use kit::db::Db;
use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::lrp::{ActualLrp, ActualState, CellPresence, DesiredLrp, DesiredLrpUpdate, Presence};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// What storing a desired LRP did.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Created,
    Updated,
    Unchanged,
    /// Same guid, different immutable fields: the caller must use a new process guid.
    Conflict(String),
}

#[derive(Clone)]
pub struct Repo {
    db: Db,
}

fn presence_code(p: Presence) -> i64 {
    match p {
        Presence::Ordinary => 0,
        Presence::Evacuating => 1,
        Presence::Suspect => 2,
    }
}

fn presence_of(code: i64) -> Presence {
    match code {
        1 => Presence::Evacuating,
        2 => Presence::Suspect,
        _ => Presence::Ordinary,
    }
}

fn state_of(s: &str) -> Result<ActualState, RepoError> {
    Ok(match s {
        "UNCLAIMED" => ActualState::Unclaimed,
        "CLAIMED" => ActualState::Claimed,
        "RUNNING" => ActualState::Running,
        "CRASHED" => ActualState::Crashed,
        other => return Err(RepoError::Corrupt(format!("state {other:?}"))),
    })
}

/// The fields that may change without a new process guid, blanked, to compare the rest.
fn immutable_part(d: &DesiredLrp) -> DesiredLrp {
    DesiredLrp {
        instances: 0,
        routes: Vec::new(),
        annotation: String::new(),
        metric_tags: Default::default(),
        ..d.clone()
    }
}

impl Repo {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn get_desired(&self, guid: &str) -> Result<Option<DesiredLrp>, RepoError> {
        let row = sqlx::query("SELECT body FROM desired_lrps WHERE process_guid = $1")
            .bind(guid)
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| decode_desired(&r)).transpose()
    }

    /// Create, or update the mutable fields of, a desired LRP.
    pub async fn put_desired(&self, d: &DesiredLrp, now: i64) -> Result<Stored, RepoError> {
        let body = serde_json::to_string(d).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        match self.get_desired(&d.process_guid).await? {
            None => {
                sqlx::query(
                    "INSERT INTO desired_lrps (process_guid, domain, log_guid, instances, body, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&d.process_guid)
                .bind(&d.domain)
                .bind(&d.log_guid)
                .bind(i64::from(d.instances))
                .bind(&body)
                .bind(now)
                .execute(&self.db.pool)
                .await?;
                Ok(Stored::Created)
            }
            Some(old) if old == *d => Ok(Stored::Unchanged),
            Some(old) if immutable_part(&old) != immutable_part(d) => Ok(Stored::Conflict(
                "only instances, routes, annotation and metric_tags may change; use a new process guid".into(),
            )),
            Some(_) => {
                self.write_desired(d, &body, now).await?;
                Ok(Stored::Updated)
            }
        }
    }

    async fn write_desired(&self, d: &DesiredLrp, body: &str, now: i64) -> Result<(), RepoError> {
        sqlx::query(
            "UPDATE desired_lrps SET instances = $2, body = $3, updated_at = $4 WHERE process_guid = $1",
        )
        .bind(&d.process_guid)
        .bind(i64::from(d.instances))
        .bind(body)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Apply an in-place update; `None` when there is no such LRP.
    pub async fn update_desired(
        &self,
        guid: &str,
        u: &DesiredLrpUpdate,
        now: i64,
    ) -> Result<Option<DesiredLrp>, RepoError> {
        let Some(mut d) = self.get_desired(guid).await? else { return Ok(None) };
        if let Some(i) = u.instances {
            d.instances = i;
        }
        if let Some(r) = &u.routes {
            d.routes = r.clone();
        }
        if let Some(a) = &u.annotation {
            d.annotation = a.clone();
        }
        if let Some(t) = &u.metric_tags {
            d.metric_tags = t.clone();
        }
        let body = serde_json::to_string(&d).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        self.write_desired(&d, &body, now).await?;
        Ok(Some(d))
    }

    pub async fn delete_desired(&self, guid: &str) -> Result<bool, RepoError> {
        let res = sqlx::query("DELETE FROM desired_lrps WHERE process_guid = $1")
            .bind(guid)
            .execute(&self.db.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Desired LRPs, optionally of one domain and/or one app (log guid), by guid.
    pub async fn list_desired(
        &self,
        domain: Option<&str>,
        log_guid: Option<&str>,
    ) -> Result<Vec<DesiredLrp>, RepoError> {
        let rows = sqlx::query(
            "SELECT body FROM desired_lrps WHERE ($1 = '' OR domain = $1) AND ($2 = '' OR log_guid = $2) \
             ORDER BY process_guid",
        )
        .bind(domain.unwrap_or(""))
        .bind(log_guid.unwrap_or(""))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(decode_desired).collect()
    }

    pub async fn insert_actual(&self, a: &ActualLrp) -> Result<(), RepoError> {
        let ports =
            serde_json::to_string(&a.ports).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO actual_lrps (process_guid, instance_index, presence, domain, instance_guid, cell_id, \
             state, address, instance_address, ports, crash_count, crash_reason, placement_error, since, routable) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&a.process_guid)
        .bind(i64::from(a.index))
        .bind(presence_code(a.presence))
        .bind(&a.domain)
        .bind(&a.instance_guid)
        .bind(&a.cell_id)
        .bind(a.state.as_str())
        .bind(&a.address)
        .bind(&a.instance_address)
        .bind(ports)
        .bind(i64::from(a.crash_count))
        .bind(&a.crash_reason)
        .bind(&a.placement_error)
        .bind(a.since)
        .bind(i64::from(a.routable))
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Insert many records in one transaction, a few hundred rows per statement.
    pub async fn insert_actual_many(&self, list: &[ActualLrp]) -> Result<(), RepoError> {
        // sqlx's SQLite binding looks parameters up by name, quadratic in their number: keep
        // SQLite statements short.
        let rows = match self.db.engine {
            kit::db::Engine::Sqlite => 32,
            kit::db::Engine::Postgres => 500,
        };
        if list.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await?;
        for chunk in list.chunks(rows) {
            let mut sql = String::from(
                "INSERT INTO actual_lrps (process_guid, instance_index, presence, domain, instance_guid, cell_id, \
                 state, address, instance_address, ports, crash_count, crash_reason, placement_error, since, routable) VALUES ",
            );
            for row in 0..chunk.len() {
                let b = row * 15;
                let params: Vec<String> = (1..=15).map(|c| format!("${}", b + c)).collect();
                if row > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(&params.join(","));
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for a in chunk {
                let ports = serde_json::to_string(&a.ports)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                q = q
                    .bind(a.process_guid.clone())
                    .bind(i64::from(a.index))
                    .bind(presence_code(a.presence))
                    .bind(a.domain.clone())
                    .bind(a.instance_guid.clone())
                    .bind(a.cell_id.clone())
                    .bind(a.state.as_str())
                    .bind(a.address.clone())
                    .bind(a.instance_address.clone())
                    .bind(ports)
                    .bind(i64::from(a.crash_count))
                    .bind(a.crash_reason.clone())
                    .bind(a.placement_error.clone())
                    .bind(a.since)
                    .bind(i64::from(a.routable));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Per process, its ORDINARY records with an index below the desired instances.
    pub async fn ordinary_counts(
        &self,
    ) -> Result<std::collections::HashMap<String, u64>, RepoError> {
        let rows = sqlx::query(
            "SELECT a.process_guid AS guid, COUNT(*) AS n FROM actual_lrps a \
             JOIN desired_lrps d ON d.process_guid = a.process_guid \
             WHERE a.presence = 0 AND a.instance_index < d.instances GROUP BY a.process_guid",
        )
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((r.try_get("guid")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    /// Records convergence must look at whatever their cell: without a desired LRP, beyond
    /// its instances, not ORDINARY (or beside one that is not), UNCLAIMED or CRASHED.
    pub async fn list_actual_needing_attention(&self) -> Result<Vec<ActualLrp>, RepoError> {
        let rows = sqlx::query(
            "SELECT a.* FROM actual_lrps a LEFT JOIN desired_lrps d ON d.process_guid = a.process_guid \
             WHERE d.process_guid IS NULL OR a.instance_index >= d.instances OR a.presence <> 0 \
             OR a.state IN ('UNCLAIMED', 'CRASHED') \
             OR EXISTS (SELECT 1 FROM actual_lrps s WHERE s.process_guid = a.process_guid \
                        AND s.instance_index = a.instance_index AND s.presence <> 0)",
        )
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(decode_actual).collect()
    }

    /// One record by its key.
    pub async fn get_actual(
        &self,
        guid: &str,
        index: u32,
        presence: Presence,
    ) -> Result<Option<ActualLrp>, RepoError> {
        let row = sqlx::query(
            "SELECT * FROM actual_lrps WHERE process_guid = $1 AND instance_index = $2 AND presence = $3",
        )
        .bind(guid)
        .bind(i64::from(index))
        .bind(presence_code(presence))
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| decode_actual(&r)).transpose()
    }

    /// Overwrite many records (same keys) in one transaction.
    pub async fn save_actual_many(&self, list: &[ActualLrp]) -> Result<(), RepoError> {
        let mut tx = self.db.pool.begin().await?;
        for a in list {
            let ports =
                serde_json::to_string(&a.ports).map_err(|e| RepoError::Corrupt(e.to_string()))?;
            sqlx::query(
                "UPDATE actual_lrps SET instance_guid = $4, cell_id = $5, state = $6, address = $7, \
                 instance_address = $8, ports = $9, crash_count = $10, crash_reason = $11, placement_error = $12, \
                 since = $13, routable = $14 WHERE process_guid = $1 AND instance_index = $2 AND presence = $3",
            )
            .bind(&a.process_guid)
            .bind(i64::from(a.index))
            .bind(presence_code(a.presence))
            .bind(&a.instance_guid)
            .bind(&a.cell_id)
            .bind(a.state.as_str())
            .bind(&a.address)
            .bind(&a.instance_address)
            .bind(ports)
            .bind(i64::from(a.crash_count))
            .bind(&a.crash_reason)
            .bind(&a.placement_error)
            .bind(a.since)
            .bind(i64::from(a.routable))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Overwrite the record with the same key (process guid, index, presence).
    pub async fn save_actual(&self, a: &ActualLrp) -> Result<(), RepoError> {
        let ports =
            serde_json::to_string(&a.ports).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE actual_lrps SET instance_guid = $4, cell_id = $5, state = $6, address = $7, \
             instance_address = $8, ports = $9, crash_count = $10, crash_reason = $11, placement_error = $12, \
             since = $13, routable = $14 WHERE process_guid = $1 AND instance_index = $2 AND presence = $3",
        )
        .bind(&a.process_guid)
        .bind(i64::from(a.index))
        .bind(presence_code(a.presence))
        .bind(&a.instance_guid)
        .bind(&a.cell_id)
        .bind(a.state.as_str())
        .bind(&a.address)
        .bind(&a.instance_address)
        .bind(ports)
        .bind(i64::from(a.crash_count))
        .bind(&a.crash_reason)
        .bind(&a.placement_error)
        .bind(a.since)
        .bind(i64::from(a.routable))
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_actual(
        &self,
        guid: &str,
        index: u32,
        presence: Presence,
    ) -> Result<(), RepoError> {
        sqlx::query("DELETE FROM actual_lrps WHERE process_guid = $1 AND instance_index = $2 AND presence = $3")
            .bind(guid)
            .bind(i64::from(index))
            .bind(presence_code(presence))
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Actual LRPs, optionally of one process and/or one cell, by process guid and index.
    pub async fn list_actual(
        &self,
        process_guid: Option<&str>,
        cell_id: Option<&str>,
    ) -> Result<Vec<ActualLrp>, RepoError> {
        let rows = sqlx::query(
            "SELECT * FROM actual_lrps WHERE ($1 = '' OR process_guid = $1) AND ($2 = '' OR cell_id = $2) \
             ORDER BY process_guid, instance_index, presence",
        )
        .bind(process_guid.unwrap_or(""))
        .bind(cell_id.unwrap_or(""))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(decode_actual).collect()
    }

    pub async fn put_cell(&self, p: &CellPresence, now: i64) -> Result<(), RepoError> {
        let body = serde_json::to_string(p).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO cells (cell_id, presence, last_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (cell_id) DO UPDATE SET presence = $2, last_seen = $3",
        )
        .bind(&p.cell_id)
        .bind(body)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Cells with the time they were last seen (unix ns).
    pub async fn list_cells(&self) -> Result<Vec<(CellPresence, i64)>, RepoError> {
        let rows = sqlx::query("SELECT presence, last_seen FROM cells ORDER BY cell_id")
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("presence")?;
                let p =
                    serde_json::from_str(&body).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                Ok((p, r.try_get::<i64, _>("last_seen")?))
            })
            .collect()
    }

    pub async fn delete_cell(&self, cell_id: &str) -> Result<(), RepoError> {
        sqlx::query("DELETE FROM cells WHERE cell_id = $1")
            .bind(cell_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

fn decode_desired(r: &AnyRow) -> Result<DesiredLrp, RepoError> {
    let body: String = r.try_get("body")?;
    serde_json::from_str(&body).map_err(|e| RepoError::Corrupt(e.to_string()))
}

fn decode_actual(r: &AnyRow) -> Result<ActualLrp, RepoError> {
    let int = |c: &str| -> Result<u32, RepoError> {
        let v: i64 = r.try_get(c)?;
        u32::try_from(v).map_err(|_| RepoError::Corrupt(format!("{c} = {v}")))
    };
    let ports: String = r.try_get("ports")?;
    let state: String = r.try_get("state")?;
    Ok(ActualLrp {
        process_guid: r.try_get("process_guid")?,
        index: int("instance_index")?,
        domain: r.try_get("domain")?,
        instance_guid: r.try_get("instance_guid")?,
        cell_id: r.try_get("cell_id")?,
        state: state_of(&state)?,
        presence: presence_of(r.try_get("presence")?),
        address: r.try_get("address")?,
        instance_address: r.try_get("instance_address")?,
        ports: serde_json::from_str(&ports).map_err(|e| RepoError::Corrupt(e.to_string()))?,
        crash_count: int("crash_count")?,
        crash_reason: r.try_get("crash_reason")?,
        placement_error: r.try_get("placement_error")?,
        since: r.try_get("since")?,
        routable: r.try_get::<i64, _>("routable")? != 0,
    })
}
