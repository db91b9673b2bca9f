//! External identity providers in the store: per organization, an issuer whose tokens
//! are accepted, its JWKS as last fetched, and the claim that names the application.

use crate::{is_unique_violation, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProviderRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub issuer: String,
    pub jwks_url: String,
    pub audience: String,
    pub app_claim: String,
    /// The JWKS document as last fetched.
    pub jwks: String,
    /// Unix seconds.
    pub fetched_at: i64,
    pub created_at: String,
}

impl Store {
    pub async fn insert_identity_provider(&self, p: &IdentityProviderRecord) -> Result<()> {
        sqlx::query("INSERT INTO identity_providers (id, org_id, name, issuer, jwks_url, audience, app_claim, jwks, fetched_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&p.id)
            .bind(&p.org_id)
            .bind(&p.name)
            .bind(&p.issuer)
            .bind(&p.jwks_url)
            .bind(&p.audience)
            .bind(&p.app_claim)
            .bind(&p.jwks)
            .bind(p.fetched_at)
            .bind(&p.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!(
                        "this organization already has an identity provider named `{}` or with the issuer {}",
                        p.name, p.issuer
                    ))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    /// Identity providers of one organization, or of all (`None`).
    pub async fn identity_providers(
        &self,
        org_id: Option<&str>,
    ) -> Result<Vec<IdentityProviderRecord>> {
        let rows = sqlx::query("SELECT * FROM identity_providers WHERE CAST($1 AS TEXT) IS NULL OR org_id = $1 ORDER BY created_at, id")
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(provider_from_row).collect())
    }

    pub async fn set_provider_jwks(&self, id: &str, jwks: &str, fetched_at: i64) -> Result<()> {
        sqlx::query("UPDATE identity_providers SET jwks = $1, fetched_at = $2 WHERE id = $3")
            .bind(jwks)
            .bind(fetched_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_identity_provider(&self, org_id: &str, key: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM identity_providers WHERE org_id = $1 AND (id = $2 OR name = $2)",
        )
        .bind(org_id)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn provider_from_row(r: &AnyRow) -> IdentityProviderRecord {
    IdentityProviderRecord {
        id: r.get("id"),
        org_id: r.get("org_id"),
        name: r.get("name"),
        issuer: r.get("issuer"),
        jwks_url: r.get("jwks_url"),
        audience: r.get("audience"),
        app_claim: r.get("app_claim"),
        jwks: r.get("jwks"),
        fetched_at: r.get("fetched_at"),
        created_at: r.get("created_at"),
    }
}
