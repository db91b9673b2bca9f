//! Consumers in the store: plans, applications (OAuth2 clients), their subscriptions to
//! APIs and their API keys, and the keys the platform signs access tokens with.

use crate::{is_unique_violation, now, Result, Store, StoreError};
use asyncgate_core::access::DEFAULT_PLANS;
use asyncgate_core::credential::new_id;
use asyncgate_core::{OnExcess, PlanLimits};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub limits: PlanLimits,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub id: String,
    pub org_id: String,
    /// The user who owns it; `None` for the operator's.
    pub owner_id: Option<String>,
    pub name: String,
    pub client_id: String,
    /// SHA-256 of the client secret.
    pub secret_hash: String,
    pub created_at: String,
    pub blocked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: String,
    pub app_id: String,
    pub api_id: String,
    pub plan_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeyRecord {
    pub id: String,
    pub app_id: String,
    pub environment: String,
    pub hash: String,
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 DER, base64.
    pub private_key: String,
    /// Raw public key, base64url.
    pub public_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Everything the gateway must know of an organization's consumers, read in one go.
#[derive(Debug, Clone, Default)]
pub struct ConsumerState {
    pub plans: Vec<PlanRecord>,
    /// Applications usable now: neither blocked nor owned by a blocked user.
    pub apps: Vec<AppRecord>,
    pub subscriptions: Vec<SubscriptionRecord>,
    pub keys: Vec<AppKeyRecord>,
}

impl Store {
    // ---- plans ------------------------------------------------------------------------

    /// Give an organization the default plans if it has none.
    pub async fn ensure_default_plans(&self, org_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plans WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
        if have == 0 {
            for (name, limits) in DEFAULT_PLANS {
                insert_plan(
                    &mut tx,
                    &PlanRecord {
                        id: new_id("pln_"),
                        org_id: org_id.into(),
                        name: name.into(),
                        limits,
                        created_at: now(),
                    },
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_plan(&self, plan: &PlanRecord) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_plan(&mut conn, plan).await
    }

    pub async fn plans(&self, org_id: &str) -> Result<Vec<PlanRecord>> {
        let rows = sqlx::query("SELECT * FROM plans WHERE org_id = $1 ORDER BY created_at, name")
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(plan_from_row).collect()
    }

    // ---- applications -----------------------------------------------------------------

    pub async fn insert_app(&self, app: &AppRecord) -> Result<()> {
        sqlx::query("INSERT INTO applications (id, org_id, owner_id, name, client_id, secret_hash, created_at, blocked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&app.id)
            .bind(&app.org_id)
            .bind(&app.owner_id)
            .bind(&app.name)
            .bind(&app.client_id)
            .bind(&app.secret_hash)
            .bind(&app.created_at)
            .bind(&app.blocked_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("an application named `{}` already exists in this organization", app.name))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    /// Every application of an organization (the caller decides whose it may see).
    pub async fn apps(&self, org_id: &str) -> Result<Vec<AppRecord>> {
        let rows =
            sqlx::query("SELECT * FROM applications WHERE org_id = $1 ORDER BY created_at, name")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(app_from_row).collect())
    }

    /// The application of an organization with this id, client id or name.
    pub async fn app(&self, org_id: &str, key: &str) -> Result<Option<AppRecord>> {
        let row = sqlx::query("SELECT * FROM applications WHERE org_id = $1 AND (id = $2 OR client_id = $2 OR name = $2)")
            .bind(org_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(app_from_row))
    }

    /// The application with this client id, wherever it is.
    pub async fn app_by_client_id(&self, client_id: &str) -> Result<Option<AppRecord>> {
        let row = sqlx::query("SELECT * FROM applications WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(app_from_row))
    }

    pub async fn set_app_blocked(&self, app_id: &str, blocked: bool) -> Result<()> {
        sqlx::query("UPDATE applications SET blocked_at = $1 WHERE id = $2")
            .bind(blocked.then(now))
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_app_secret(&self, app_id: &str, secret_hash: &str) -> Result<()> {
        sqlx::query("UPDATE applications SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash)
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_app(&self, app_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM applications WHERE id = $1")
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- subscriptions ----------------------------------------------------------------

    pub async fn insert_subscription(&self, s: &SubscriptionRecord) -> Result<()> {
        sqlx::query("INSERT INTO subscriptions (id, app_id, api_id, plan_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.id)
            .bind(&s.app_id)
            .bind(&s.api_id)
            .bind(&s.plan_id)
            .bind(&s.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("the application is already subscribed to this API".into())
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub async fn subscriptions(&self, app_id: &str) -> Result<Vec<SubscriptionRecord>> {
        let rows =
            sqlx::query("SELECT * FROM subscriptions WHERE app_id = $1 ORDER BY created_at, id")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(subscription_from_row).collect())
    }

    pub async fn delete_subscription(&self, app_id: &str, api_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM subscriptions WHERE app_id = $1 AND api_id = $2")
            .bind(app_id)
            .bind(api_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- application keys -------------------------------------------------------------

    pub async fn insert_app_key(&self, k: &AppKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO app_keys (id, app_id, environment, hash, hint, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&k.id)
            .bind(&k.app_id)
            .bind(&k.environment)
            .bind(&k.hash)
            .bind(&k.hint)
            .bind(&k.created_at)
            .bind(&k.revoked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn app_keys(&self, app_id: &str) -> Result<Vec<AppKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM app_keys WHERE app_id = $1 ORDER BY created_at, id")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(app_key_from_row).collect())
    }

    pub async fn revoke_app_key(&self, app_id: &str, key_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE app_keys SET revoked_at = $1 WHERE app_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(app_id)
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// What the gateway needs of every organization's consumers.
    pub async fn consumer_state(&self) -> Result<ConsumerState> {
        let plans = sqlx::query("SELECT * FROM plans ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(plan_from_row)
            .collect::<Result<_>>()?;
        let apps = sqlx::query(
            "SELECT a.* FROM applications a LEFT JOIN users u ON u.id = a.owner_id \
             WHERE a.blocked_at IS NULL AND u.blocked_at IS NULL ORDER BY a.id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(app_from_row)
        .collect();
        let subscriptions = sqlx::query("SELECT * FROM subscriptions ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(subscription_from_row)
            .collect();
        let keys = sqlx::query("SELECT * FROM app_keys WHERE revoked_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(app_key_from_row)
            .collect();
        Ok(ConsumerState {
            plans,
            apps,
            subscriptions,
            keys,
        })
    }

    // ---- signing keys -----------------------------------------------------------------

    pub async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&k.kid)
            .bind(&k.algorithm)
            .bind(&k.private_key)
            .bind(&k.public_key)
            .bind(k.created_at)
            .bind(k.retired_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Retire every signing key but `kid`, as of `at` (Unix seconds).
    pub async fn retire_signing_keys_except(&self, kid: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND retired_at IS NULL",
        )
        .bind(at)
        .bind(kid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Signing keys not retired before `since` (Unix seconds), newest first.
    pub async fn signing_keys(&self, since: i64) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at >= $1 ORDER BY created_at DESC, kid")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| SigningKeyRecord {
                kid: r.get("kid"),
                algorithm: r.get("algorithm"),
                private_key: r.get("private_key"),
                public_key: r.get("public_key"),
                created_at: r.get("created_at"),
                retired_at: r.get("retired_at"),
            })
            .collect())
    }
}

async fn insert_plan(conn: &mut sqlx::AnyConnection, plan: &PlanRecord) -> Result<()> {
    let l = &plan.limits;
    sqlx::query("INSERT INTO plans (id, org_id, name, max_connections, messages_per_minute, bytes_per_minute, on_excess, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&plan.id)
        .bind(&plan.org_id)
        .bind(&plan.name)
        .bind(l.max_connections as i64)
        .bind(l.messages_per_minute as i64)
        .bind(l.bytes_per_minute as i64)
        .bind(l.on_excess.as_str())
        .bind(&plan.created_at)
        .execute(conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a plan named `{}` already exists in this organization", plan.name))
            } else {
                e.into()
            }
        })?;
    Ok(())
}

fn plan_from_row(r: &AnyRow) -> Result<PlanRecord> {
    Ok(PlanRecord {
        id: r.get("id"),
        org_id: r.get("org_id"),
        name: r.get("name"),
        limits: PlanLimits {
            max_connections: r.get::<i64, _>("max_connections") as u64,
            messages_per_minute: r.get::<i64, _>("messages_per_minute") as u64,
            bytes_per_minute: r.get::<i64, _>("bytes_per_minute") as u64,
            on_excess: OnExcess::from_str(r.get::<&str, _>("on_excess"))
                .map_err(StoreError::Corrupt)?,
        },
        created_at: r.get("created_at"),
    })
}

fn app_from_row(r: &AnyRow) -> AppRecord {
    AppRecord {
        id: r.get("id"),
        org_id: r.get("org_id"),
        owner_id: r.get("owner_id"),
        name: r.get("name"),
        client_id: r.get("client_id"),
        secret_hash: r.get("secret_hash"),
        created_at: r.get("created_at"),
        blocked_at: r.get("blocked_at"),
    }
}

fn subscription_from_row(r: &AnyRow) -> SubscriptionRecord {
    SubscriptionRecord {
        id: r.get("id"),
        app_id: r.get("app_id"),
        api_id: r.get("api_id"),
        plan_id: r.get("plan_id"),
        created_at: r.get("created_at"),
    }
}

fn app_key_from_row(r: &AnyRow) -> AppKeyRecord {
    AppKeyRecord {
        id: r.get("id"),
        app_id: r.get("app_id"),
        environment: r.get("environment"),
        hash: r.get("hash"),
        hint: r.get("hint"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
    }
}
