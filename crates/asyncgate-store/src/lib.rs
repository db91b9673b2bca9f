//! The control plane's persistent store: an embedded SQLite database in the data folder
//! (the default), or PostgreSQL shared by several control planes.
//!
//! Every write is one statement or one transaction, so a failed request leaves what was
//! stored before it untouched. The gateway never reads this crate.

mod access;
mod cluster;
mod consumers;
mod location;
mod providers;
mod records;
mod transfer;

pub use access::{
    Member, OrgRecord, ProjectRecord, TokenKind, UserRecord, UserTokenRecord, DEFAULT_ORG_ID,
};
pub use consumers::{
    AppKeyRecord, AppRecord, ConsumerState, PlanRecord, SigningKeyRecord, SubscriptionRecord,
};
pub use providers::IdentityProviderRecord;
pub use records::{
    Actor, ApiDesign, ApiRecord, AuditEntry, AuditFilter, Deployed, DeploymentAction,
    DeploymentEvent, DeploymentRecord, EnvironmentValues, KeyRecord, LifecycleEvent,
    RevisionRecord,
};

use asyncgate_core::{AccessMode, LifecycleState};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow};
use sqlx::{AnyPool, ConnectOptions, Connection, Row};
use std::str::FromStr;
use std::time::Duration;

pub use cluster::{ChangeFeed, Heard, NodeRecord, NodeTokenRecord};
pub use location::{Engine, LocationError, StoreLocation};
pub use transfer::{Export, Imported};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// PostgreSQL's URL, for the connection that listens for other control planes.
    postgres_url: Option<std::sync::Arc<str>>,
}

/// Now, as RFC 3339 text (UTC).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Longest a request waits for a database connection (PostgreSQL away, say) before it
/// fails with a database error instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Open (creating if needed) an SQLite database file and bring its schema up to date.
    pub async fn open(path: &std::path::Path) -> Result<Store> {
        Store::connect(&StoreLocation::Sqlite(path.to_path_buf())).await
    }

    /// Connect to the store at `location`, bring its schema up to date (several control
    /// planes starting together on one PostgreSQL take turns: sqlx holds an advisory lock
    /// while it migrates), and keep a pool of connections. Every query then goes through
    /// sqlx's Any driver, so the same SQL serves both engines.
    pub async fn connect(location: &StoreLocation) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, max_connections) = match location {
            StoreLocation::Sqlite(path) => {
                migrate_sqlite(path).await?;
                (location::sqlite_url(path), 4)
            }
            StoreLocation::Postgres(url) => {
                let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
                sqlx::migrate!("./migrations/postgres")
                    .run(&mut conn)
                    .await?;
                conn.close().await?;
                (url.clone(), 8)
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(AnyConnectOptions::from_str(&url)?)
            .await?;
        Ok(Store {
            pool,
            engine: location.engine(),
            postgres_url: match location {
                StoreLocation::Postgres(url) => Some(url.as_str().into()),
                StoreLocation::Sqlite(_) => None,
            },
        })
    }

    /// A transaction that writes. On SQLite it takes the write lock at its start
    /// (`BEGIN IMMEDIATE`), so it waits its turn behind other writers (the busy timeout)
    /// instead of failing with "database is locked" when it writes after reading.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        })
    }

    /// Which database engine holds the store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Whether the store answers a query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- meta -------------------------------------------------------------------------

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stored value of `key`, or `make()` stored and returned when there is none.
    pub async fn meta_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        let value = make();
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING")
            .bind(key)
            .bind(&value)
            .execute(&self.pool)
            .await?;
        self.meta(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("meta key {key}")))
    }

    // ---- APIs -------------------------------------------------------------------------

    /// Which unique value of `api` another API already holds, asked of the store
    /// rather than read from the database's error text.
    async fn conflict_of(&self, api: &ApiRecord) -> StoreError {
        let base_path_taken = sqlx::query("SELECT 1 FROM apis WHERE base_path = $1 AND id != $2")
            .bind(&api.design.base_path)
            .bind(&api.id)
            .fetch_optional(&self.pool)
            .await
            .is_ok_and(|row| row.is_some());
        StoreError::Conflict(if base_path_taken {
            format!(
                "another API already uses the base path {}",
                api.design.base_path
            )
        } else {
            format!(
                "an API with the identifier `{}` and version {} already exists in project `{}`",
                api.design.identifier, api.design.version, api.project
            )
        })
    }

    pub async fn insert_api(&self, api: &ApiRecord) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO apis (id, org_id, project, identifier, base_path, lifecycle, display_name, design, contract_source, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&api.id)
        .bind(&api.org_id)
        .bind(&api.project)
        .bind(&api.design.identifier)
        .bind(&api.design.base_path)
        .bind(api.lifecycle.as_str())
        .bind(&api.display_name)
        .bind(to_json(&api.design)?)
        .bind(&api.contract_source)
        .bind(&api.created_at)
        .bind(&api.updated_at)
        .bind(&api.design.version)
        .execute(&self.pool)
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => Err(self.conflict_of(api).await),
            other => other.map(|_| ()).map_err(StoreError::Db),
        }
    }

    /// Write `api` over the stored one, unless another write came after `api` was read
    /// (its `row_version` is no longer the stored one): then nothing is written and the
    /// answer is a conflict. On success `api.row_version` is the new count.
    pub async fn update_api(&self, api: &mut ApiRecord) -> Result<()> {
        let done = sqlx::query(
            "UPDATE apis SET identifier = $1, base_path = $2, lifecycle = $3, display_name = $4, design = $5, contract_source = $6, updated_at = $7, version = $9, row_version = row_version + 1
             WHERE id = $8 AND row_version = $10",
        )
        .bind(&api.design.identifier)
        .bind(&api.design.base_path)
        .bind(api.lifecycle.as_str())
        .bind(&api.display_name)
        .bind(to_json(&api.design)?)
        .bind(&api.contract_source)
        .bind(&api.updated_at)
        .bind(&api.id)
        .bind(&api.design.version)
        .bind(api.row_version)
        .execute(&self.pool)
        .await;
        let done = match done {
            Err(e) if is_unique_violation(&e) => return Err(self.conflict_of(api).await),
            other => other?,
        };
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM apis WHERE id = $1")
                .bind(&api.id)
                .fetch_optional(&self.pool)
                .await?
                .is_some();
            return Err(match exists {
                false => StoreError::NotFound(format!("API {}", api.id)),
                true => StoreError::Conflict(format!(
                    "API {} was changed by another request after this one read it; nothing was written: read it again and retry",
                    api.id
                )),
            });
        }
        api.row_version += 1;
        Ok(())
    }

    /// The APIs of an organization (or of any, `None`) `key` may name: the one with that
    /// id, or every one with that identifier (each version, in each project), or those at
    /// `project/identifier`; either name may end with `@version`. The caller decides what
    /// several mean.
    pub async fn apis_named(&self, org_id: Option<&str>, key: &str) -> Result<Vec<ApiRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM apis WHERE (CAST($2 AS TEXT) IS NULL OR org_id = $2) AND (id = $1 OR identifier = $1 OR project || '/' || identifier = $1 \
             OR identifier || '@' || version = $1 OR project || '/' || identifier || '@' || version = $1) \
             ORDER BY id = $1 DESC, project, created_at",
        )
        .bind(key)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_from_row).collect()
    }

    /// The APIs of one organization, or of every one (`None`).
    pub async fn apis(&self, org_id: Option<&str>) -> Result<Vec<ApiRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM apis WHERE CAST($1 AS TEXT) IS NULL OR org_id = $1 ORDER BY created_at, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_from_row).collect()
    }

    pub async fn delete_api(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM apis WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- revisions --------------------------------------------------------------------

    /// The versions of an API: every API of its project with its identifier, oldest first.
    pub async fn versions(&self, api: &ApiRecord) -> Result<Vec<ApiRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM apis WHERE org_id = $1 AND project = $2 AND identifier = $3 ORDER BY created_at, id",
        )
        .bind(&api.org_id)
        .bind(&api.project)
        .bind(&api.design.identifier)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_from_row).collect()
    }

    /// Freeze what `api` holds now (its design and contract source) as its next revision,
    /// made by `by`.
    pub async fn create_revision(&self, api: &ApiRecord, by: &str) -> Result<RevisionRecord> {
        let api_id = api.id.as_str();
        let mut tx = self.begin_write().await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE api_id = $1",
        )
        .bind(api_id)
        .fetch_one(&mut *tx)
        .await?;
        let rec = RevisionRecord {
            api_id: api_id.to_string(),
            number: next as u32,
            design: api.design.clone(),
            contract_source: api.contract_source.clone(),
            created_at: now(),
            created_by: by.to_string(),
        };
        sqlx::query(
            "INSERT INTO revisions (api_id, number, design, contract_source, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&rec.api_id)
        .bind(next)
        .bind(to_json(&rec.design)?)
        .bind(&rec.contract_source)
        .bind(&rec.created_at)
        .bind(&rec.created_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rec)
    }

    pub async fn revisions(&self, api_id: &str) -> Result<Vec<RevisionRecord>> {
        let rows = sqlx::query("SELECT * FROM revisions WHERE api_id = $1 ORDER BY number")
            .bind(api_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(revision_from_row).collect()
    }

    pub async fn revision(&self, api_id: &str, number: u32) -> Result<Option<RevisionRecord>> {
        let row = sqlx::query("SELECT * FROM revisions WHERE api_id = $1 AND number = $2")
            .bind(api_id)
            .bind(i64::from(number))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(revision_from_row).transpose()
    }

    // ---- deployments ------------------------------------------------------------------

    /// Point `environment` of an API at a revision (replacing what was deployed there),
    /// and record it in the deployment history, in one transaction. Returns the revision
    /// served there before, if any.
    pub async fn set_deployment(
        &self,
        d: &DeploymentRecord,
        action: DeploymentAction,
    ) -> Result<Option<u32>> {
        let mut tx = self.begin_write().await?;
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM deployments WHERE api_id = $1 AND environment = $2",
        )
        .bind(&d.api_id)
        .bind(&d.environment)
        .fetch_optional(&mut *tx)
        .await?;
        let values = to_json(&d.values)?;
        sqlx::query(
            "INSERT INTO deployments (api_id, environment, revision, access_mode, deployed_at, environment_values, deployed_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT(api_id, environment) DO UPDATE SET revision = excluded.revision, access_mode = excluded.access_mode, deployed_at = excluded.deployed_at, \
             environment_values = excluded.environment_values, deployed_by = excluded.deployed_by",
        )
        .bind(&d.api_id)
        .bind(&d.environment)
        .bind(d.revision as i64)
        .bind(d.access_mode.as_str())
        .bind(&d.deployed_at)
        .bind(&values)
        .bind(&d.deployed_by)
        .execute(&mut *tx)
        .await?;
        let previous = previous.map(|n| n as u32);
        insert_event(
            &mut tx,
            &DeploymentEvent {
                api_id: d.api_id.clone(),
                environment: d.environment.clone(),
                action,
                revision: Some(d.revision),
                previous_revision: previous,
                access_mode: Some(d.access_mode),
                values: d.values.clone(),
                actor: d.deployed_by.clone(),
                at: d.deployed_at.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(previous)
    }

    /// Stop serving an API in an environment, recorded in the history. False when it was
    /// not deployed there.
    pub async fn remove_deployment(
        &self,
        api_id: &str,
        environment: &str,
        action: DeploymentAction,
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = undeploy_in(&mut tx, api_id, Some(environment), action, actor).await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Every change of what an API's environments serve (or one environment's), oldest
    /// first.
    pub async fn deployment_history(
        &self,
        api_id: &str,
        environment: Option<&str>,
    ) -> Result<Vec<DeploymentEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM deployment_history WHERE api_id = $1 AND (CAST($2 AS TEXT) IS NULL OR environment = $2) ORDER BY id",
        )
        .bind(api_id)
        .bind(environment)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let action: String = r.get("action");
                let mode: Option<String> = r.get("access_mode");
                Ok(DeploymentEvent {
                    api_id: r.get("api_id"),
                    environment: r.get("environment"),
                    action: DeploymentAction::parse(&action).ok_or_else(|| {
                        StoreError::Corrupt(format!("deployment action {action}"))
                    })?,
                    revision: r.get::<Option<i64>, _>("revision").map(|n| n as u32),
                    previous_revision: r
                        .get::<Option<i64>, _>("previous_revision")
                        .map(|n| n as u32),
                    access_mode: mode
                        .map(|m| AccessMode::from_str(&m).map_err(StoreError::Corrupt))
                        .transpose()?,
                    values: from_json(r.get::<&str, _>("environment_values"))?,
                    actor: r.get("actor"),
                    at: r.get("at"),
                })
            })
            .collect()
    }

    // ---- lifecycle --------------------------------------------------------------------

    /// Store `api`'s new lifecycle state (and display name) with its history entry, in one
    /// transaction; when the new state `undeploys`, every deployment of the API is removed
    /// and its subscriptions end. Returns the environments it was removed from and the
    /// number of subscriptions ended.
    pub async fn change_lifecycle(
        &self,
        api: &ApiRecord,
        from: LifecycleState,
        actor: &str,
        note: &str,
    ) -> Result<(Vec<String>, u64)> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE apis SET lifecycle = $1, display_name = $2, updated_at = $3, row_version = row_version + 1 WHERE id = $4 AND lifecycle = $5",
        )
        .bind(api.lifecycle.as_str())
        .bind(&api.display_name)
        .bind(&api.updated_at)
        .bind(&api.id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the lifecycle state of {} changed meanwhile; read it again",
                api.design.name
            )));
        }
        sqlx::query(
            "INSERT INTO lifecycle_history (api_id, from_state, to_state, actor, at, note) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&api.id)
        .bind(from.as_str())
        .bind(api.lifecycle.as_str())
        .bind(actor)
        .bind(&api.updated_at)
        .bind(note)
        .execute(&mut *tx)
        .await?;
        let mut removed = Vec::new();
        let mut ended = 0;
        if api.lifecycle.undeploys() {
            removed = sqlx::query_scalar(
                "SELECT environment FROM deployments WHERE api_id = $1 ORDER BY environment",
            )
            .bind(&api.id)
            .fetch_all(&mut *tx)
            .await?;
            undeploy_in(&mut tx, &api.id, None, DeploymentAction::Retire, actor).await?;
            ended = sqlx::query("DELETE FROM subscriptions WHERE api_id = $1")
                .bind(&api.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok((removed, ended))
    }

    /// An API's lifecycle changes, oldest first.
    pub async fn lifecycle_history(&self, api_id: &str) -> Result<Vec<LifecycleEvent>> {
        let rows = sqlx::query("SELECT * FROM lifecycle_history WHERE api_id = $1 ORDER BY id")
            .bind(api_id)
            .fetch_all(&self.pool)
            .await?;
        let state = |r: &AnyRow, column: &str| {
            LifecycleState::from_str(r.get::<&str, _>(column)).map_err(StoreError::Corrupt)
        };
        rows.iter()
            .map(|r| {
                Ok(LifecycleEvent {
                    from: state(r, "from_state")?,
                    to: state(r, "to_state")?,
                    who: r.get("actor"),
                    when: r.get("at"),
                    note: r.get("note"),
                })
            })
            .collect()
    }

    pub async fn deployments(&self, api_id: &str) -> Result<Vec<DeploymentRecord>> {
        let rows = sqlx::query("SELECT * FROM deployments WHERE api_id = $1 ORDER BY environment")
            .bind(api_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// Deployments with the revision each serves: of one API, or of every API (`None`),
    /// oldest deployment first. The one way to learn what a deployment serves (a
    /// deployment cannot point at a missing revision: the schema's foreign key).
    pub async fn deployed(&self, api_id: Option<&str>) -> Result<Vec<Deployed>> {
        let rows = sqlx::query(
            "SELECT d.api_id, d.environment, d.revision, d.access_mode, d.deployed_at, d.environment_values, d.deployed_by, \
                    r.number, r.design, r.contract_source, r.created_at, r.created_by \
             FROM deployments d JOIN revisions r ON r.api_id = d.api_id AND r.number = d.revision \
             WHERE CAST($1 AS TEXT) IS NULL OR d.api_id = $1 \
             ORDER BY d.deployed_at, d.api_id, d.environment",
        )
        .bind(api_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Deployed {
                    deployment: deployment_from_row(r)?,
                    revision: revision_from_row(r)?,
                })
            })
            .collect()
    }

    // ---- API keys ---------------------------------------------------------------------

    pub async fn insert_key(&self, key: &KeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, api_id, hash, hint, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&key.id)
            .bind(&key.api_id)
            .bind(&key.hash)
            .bind(&key.hint)
            .bind(&key.created_at)
            .bind(&key.revoked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn revoke_key(&self, api_id: &str, key_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE api_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(api_id)
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn keys(&self, api_id: &str) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE api_id = $1 ORDER BY created_at, id")
            .bind(api_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub async fn active_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY api_id, created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    // ---- audit ------------------------------------------------------------------------

    /// Record what `actor` did. `api_id` names the API the action concerned, if one did,
    /// so that the log can be filtered by API.
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        subject: &str,
        api_id: Option<&str>,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, org_id, actor, origin, action, subject, api_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(now())
        .bind(&actor.org_id)
        .bind(&actor.who)
        .bind(&actor.origin)
        .bind(action)
        .bind(subject)
        .bind(api_id)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An organization's audit log, newest first.
    pub async fn audit_log(&self, org_id: &str, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE org_id = $1 AND (CAST($2 AS TEXT) IS NULL OR api_id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR actor = $3) AND (CAST($4 AS TEXT) IS NULL OR at >= $4) ORDER BY id DESC LIMIT $5",
        )
        .bind(org_id)
        .bind(&filter.api_id)
        .bind(&filter.actor)
        .bind(&filter.since)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get("at"),
                actor: r.get("actor"),
                origin: r.get("origin"),
                action: r.get("action"),
                subject: r.get("subject"),
                api_id: r.get("api_id"),
                detail: r.get("detail"),
            })
            .collect())
    }
}

async fn insert_event(tx: &mut sqlx::AnyConnection, e: &DeploymentEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_history (api_id, environment, action, revision, previous_revision, access_mode, environment_values, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.api_id)
    .bind(&e.environment)
    .bind(e.action.as_str())
    .bind(e.revision.map(i64::from))
    .bind(e.previous_revision.map(i64::from))
    .bind(e.access_mode.map(|m| m.as_str()))
    .bind(to_json(&e.values)?)
    .bind(&e.actor)
    .bind(&e.at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Remove an API's deployment in one environment (or in all, `None`), each recorded in
/// the history; returns how many were removed.
async fn undeploy_in(
    tx: &mut sqlx::AnyConnection,
    api_id: &str,
    environment: Option<&str>,
    action: DeploymentAction,
    actor: &str,
) -> Result<u64> {
    let rows = sqlx::query(
        "SELECT environment, revision FROM deployments WHERE api_id = $1 AND (CAST($2 AS TEXT) IS NULL OR environment = $2)",
    )
    .bind(api_id)
    .bind(environment)
    .fetch_all(&mut *tx)
    .await?;
    let at = now();
    for r in &rows {
        insert_event(
            tx,
            &DeploymentEvent {
                api_id: api_id.to_string(),
                environment: r.get("environment"),
                action,
                revision: None,
                previous_revision: Some(r.get::<i64, _>("revision") as u32),
                access_mode: None,
                values: EnvironmentValues::default(),
                actor: actor.to_string(),
                at: at.clone(),
            },
        )
        .await?;
    }
    sqlx::query(
        "DELETE FROM deployments WHERE api_id = $1 AND (CAST($2 AS TEXT) IS NULL OR environment = $2)",
    )
    .bind(api_id)
    .bind(environment)
    .execute(&mut *tx)
    .await?;
    Ok(rows.len() as u64)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Bring an SQLite file's schema up to date. Migrations run with foreign keys off, as
/// SQLite's way of changing a table needs (dropping a rebuilt table must not cascade);
/// they are checked before use.
async fn migrate_sqlite(path: &std::path::Path) -> Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(false);
    let mut conn = options.connect().await?;
    sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
    let broken: Vec<SqliteRow> = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut conn)
        .await?;
    if let Some(row) = broken.first() {
        return Err(StoreError::Corrupt(format!(
            "{} rows break foreign keys after migrating (first in table {})",
            broken.len(),
            row.get::<String, _>(0)
        )));
    }
    conn.close().await?;
    Ok(())
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn api_from_row(r: &AnyRow) -> Result<ApiRecord> {
    let lifecycle: String = r.get("lifecycle");
    Ok(ApiRecord {
        id: r.get("id"),
        org_id: r.get("org_id"),
        project: r.get("project"),
        lifecycle: LifecycleState::from_str(&lifecycle).map_err(StoreError::Corrupt)?,
        display_name: r.get("display_name"),
        design: from_json(r.get::<&str, _>("design"))?,
        contract_source: r.get("contract_source"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        row_version: r.get("row_version"),
    })
}

fn revision_from_row(r: &AnyRow) -> Result<RevisionRecord> {
    Ok(RevisionRecord {
        api_id: r.get("api_id"),
        number: r.get::<i64, _>("number") as u32,
        design: from_json(r.get::<&str, _>("design"))?,
        contract_source: r.get("contract_source"),
        created_at: r.get("created_at"),
        created_by: r.get("created_by"),
    })
}

fn deployment_from_row(r: &AnyRow) -> Result<DeploymentRecord> {
    let mode: String = r.get("access_mode");
    Ok(DeploymentRecord {
        api_id: r.get("api_id"),
        environment: r.get("environment"),
        revision: r.get::<i64, _>("revision") as u32,
        access_mode: AccessMode::from_str(&mode).map_err(StoreError::Corrupt)?,
        deployed_at: r.get("deployed_at"),
        values: from_json(r.get::<&str, _>("environment_values"))?,
        deployed_by: r.get("deployed_by"),
    })
}

fn key_from_row(r: &AnyRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        id: r.get("id"),
        api_id: r.get("api_id"),
        hash: r.get("hash"),
        hint: r.get("hint"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncgate_core::LifecycleState;

    const CONTRACT: &str = "asyncapi: 2.6.0\ninfo: {title: Chat, version: 1.0.0}\nchannels:\n  /:\n    publish: {message: {payload: {type: string}}}\n";

    fn api() -> ApiRecord {
        let contract = asyncgate_contract::parse(CONTRACT, &Default::default()).unwrap();
        ApiRecord {
            id: "api_1".into(),
            org_id: DEFAULT_ORG_ID.into(),
            project: "default".into(),
            lifecycle: LifecycleState::Created,
            display_name: None,
            design: ApiDesign {
                name: "Chat".into(),
                identifier: "chat".into(),
                version: "1.0.0".into(),
                base_path: "/default/chat/v1.0.0".into(),
                target: "ws://127.0.0.1:1".into(),
                description: None,
                contract,
                limits: Default::default(),
                security: Default::default(),
                policies: Default::default(),
                backend_headers: Default::default(),
            },
            contract_source: CONTRACT.into(),
            created_at: now(),
            updated_at: now(),
            row_version: 0,
        }
    }

    #[tokio::test]
    async fn a_revision_is_its_source_and_values_not_the_parsers_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let mut api = api();
        store.insert_api(&api).await.unwrap();
        let rev = store.create_revision(&api, "operator").await.unwrap();
        assert_eq!(
            store.revisions(&api.id).await.unwrap(),
            std::slice::from_ref(&rev)
        );
        assert!(rev.freezes(&api));
        // The same source read differently (a newer parser) is the same revision.
        api.design.contract.title = "read differently".into();
        api.design.contract.warnings.clear();
        assert!(rev.freezes(&api));
        // A changed value or source is not.
        let mut edited = api.clone();
        edited.design.target = "ws://127.0.0.1:2".into();
        assert!(!rev.freezes(&edited));
        let mut reimported = api.clone();
        reimported.contract_source.push_str("# new\n");
        assert!(!rev.freezes(&reimported));
    }

    #[tokio::test]
    async fn upgrading_a_store_of_the_previous_schema_keeps_every_revision_and_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        {
            let mut conn = options.connect().await.unwrap();
            let mut before = sqlx::migrate!("./migrations/sqlite");
            before.migrations = before
                .migrations
                .iter()
                .filter(|m| m.version <= 4)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            before.run(&mut conn).await.unwrap();
            let design = serde_json::to_string(&api().design).unwrap();
            for sql in [
                "INSERT INTO apis (id, project, identifier, base_path, lifecycle, design, contract_source, created_at, updated_at) VALUES ('api_1', 'default', 'chat', '/default/chat/v1.0.0', 'Published', $1, '', 't', 't')",
                "INSERT INTO revisions (api_id, number, design, created_at) VALUES ('api_1', 1, $1, 't')",
                "INSERT INTO deployments (api_id, environment, revision, access_mode, deployed_at) VALUES ('api_1', 'production', 1, 'external', 't')",
            ] {
                sqlx::query(sql).bind(&design).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
        let store = Store::open(&path).await.unwrap();
        let apis = store.apis(None).await.unwrap();
        assert_eq!(apis.len(), 1);
        assert_eq!(store.revisions("api_1").await.unwrap().len(), 1);
        let deployed = store.deployed(Some("api_1")).await.unwrap();
        assert_eq!(deployed.len(), 1);
        assert!(deployed[0].deployment.values.is_empty());
        // The version is a column now: a second version of the identifier is allowed,
        // the same version twice is not.
        let mut v2 = apis[0].clone();
        v2.id = "api_2".into();
        v2.design.version = "2.0.0".into();
        v2.design.base_path = "/default/chat/v2.0.0".into();
        store.insert_api(&v2).await.unwrap();
        assert_eq!(store.versions(&apis[0]).await.unwrap().len(), 2);
        assert_eq!(
            store.apis_named(None, "chat@2.0.0").await.unwrap()[0].id,
            "api_2"
        );
        let mut again = v2.clone();
        again.id = "api_3".into();
        again.design.base_path = "/elsewhere".into();
        assert!(
            matches!(store.insert_api(&again).await, Err(StoreError::Conflict(m)) if m.contains("version 2.0.0"))
        );
    }

    #[tokio::test]
    async fn a_token_works_until_it_expires_is_revoked_or_its_user_is_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let user = UserRecord {
            id: "usr_1".into(),
            email: "Ann@Example.org".into(),
            password_hash: "$argon2id$x".into(),
            created_at: now(),
            blocked_at: None,
        };
        store
            .add_member(&user, DEFAULT_ORG_ID, asyncgate_core::Role::Publisher)
            .await
            .unwrap();
        assert!(matches!(
            store
                .add_member(&user, DEFAULT_ORG_ID, asyncgate_core::Role::Admin)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store
                .user_by_email("ann@example.org")
                .await
                .unwrap()
                .unwrap()
                .id,
            "usr_1"
        );
        let token = UserTokenRecord {
            id: "tok_1".into(),
            user_id: "usr_1".into(),
            kind: TokenKind::Session,
            name: "session".into(),
            hash: "h1".into(),
            hint: "ags_abcd".into(),
            created_at: now(),
            expires_at: Some(1_000),
            revoked_at: None,
        };
        store.insert_user_token(&token).await.unwrap();
        assert!(store.user_of_token("h1", 999).await.unwrap().is_some());
        assert!(
            store.user_of_token("h1", 1_000).await.unwrap().is_none(),
            "expired"
        );
        store.set_user_blocked("usr_1", true).await.unwrap();
        assert!(
            store.user_of_token("h1", 999).await.unwrap().is_none(),
            "blocked"
        );
        store.set_user_blocked("usr_1", false).await.unwrap();
        assert!(store.revoke_user_token("usr_1", "tok_1").await.unwrap());
        assert!(
            store.user_of_token("h1", 999).await.unwrap().is_none(),
            "revoked"
        );
    }
}
