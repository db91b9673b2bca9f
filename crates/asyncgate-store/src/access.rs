//! Tenancy in the store: organizations and their projects, users, memberships (a user's
//! role in an organization), and users' tokens (sessions and personal access tokens).

use crate::{is_unique_violation, now, Result, Store, StoreError};
use asyncgate_core::Role;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

/// The organization everything made before organizations existed belongs to; the
/// operator's admin token acts in it unless told otherwise.
pub const DEFAULT_ORG_ID: &str = "org_default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgRecord {
    pub id: String,
    pub handle: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRecord {
    pub id: String,
    pub org_id: String,
    pub handle: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: String,
    pub blocked_at: Option<String>,
}

/// A user and their role in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: UserRecord,
    pub org_id: String,
    pub role: Role,
    pub joined_at: String,
}

/// What a user's token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Made by signing in; expires.
    Session,
    /// A personal access token for automation.
    Personal,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Personal => "personal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenRecord {
    pub id: String,
    pub user_id: String,
    pub kind: TokenKind,
    pub name: String,
    pub hash: String,
    pub hint: String,
    pub created_at: String,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<String>,
}

impl Store {
    // ---- organizations ----------------------------------------------------------------

    /// Create an organization with its default project (handle `project_handle`), in one
    /// transaction.
    pub async fn create_org(&self, org: &OrgRecord, project_handle: &str) -> Result<ProjectRecord> {
        let project = ProjectRecord {
            id: asyncgate_core::credential::new_id("prj_"),
            org_id: org.id.clone(),
            handle: project_handle.to_string(),
            name: "Default Project".into(),
            created_at: org.created_at.clone(),
        };
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO organizations (id, handle, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&org.id)
        .bind(&org.handle)
        .bind(&org.name)
        .bind(&org.created_at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = done {
            return Err(if is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "an organization named `{}` (or with the handle `{}`) already exists",
                    org.name, org.handle
                ))
            } else {
                e.into()
            });
        }
        insert_project(&mut tx, &project).await?;
        tx.commit().await?;
        Ok(project)
    }

    /// The organization with this id or handle (or, case aside, name).
    pub async fn org(&self, key: &str) -> Result<Option<OrgRecord>> {
        let row = sqlx::query(
            "SELECT * FROM organizations WHERE id = $1 OR handle = $1 OR lower(name) = lower($1)",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(org_from_row))
    }

    /// Whether consumers may sign up as subscribers of the organization in the portal.
    pub async fn subscriber_signup(&self, org_id: &str) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT subscriber_signup FROM organizations WHERE id = $1")
                .bind(org_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some_and(|(open,)| open != 0))
    }

    pub async fn set_subscriber_signup(&self, org_id: &str, open: bool) -> Result<()> {
        let done = sqlx::query("UPDATE organizations SET subscriber_signup = $1 WHERE id = $2")
            .bind(i64::from(open))
            .bind(org_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("organization {org_id}")));
        }
        Ok(())
    }

    /// The organizations consumers may sign up to, by name.
    pub async fn signup_orgs(&self) -> Result<Vec<OrgRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM organizations WHERE subscriber_signup <> 0 ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(org_from_row).collect())
    }

    pub async fn orgs(&self) -> Result<Vec<OrgRecord>> {
        let rows = sqlx::query("SELECT * FROM organizations ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(org_from_row).collect())
    }

    // ---- projects ---------------------------------------------------------------------

    /// The project with this handle, in whichever organization has it.
    pub async fn project(&self, handle: &str) -> Result<Option<ProjectRecord>> {
        let row = sqlx::query("SELECT * FROM projects WHERE handle = $1")
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(project_from_row))
    }

    pub async fn projects(&self, org_id: &str) -> Result<Vec<ProjectRecord>> {
        let rows =
            sqlx::query("SELECT * FROM projects WHERE org_id = $1 ORDER BY created_at, handle")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(project_from_row).collect())
    }

    /// The default project of an organization: its first.
    pub async fn default_project(&self, org_id: &str) -> Result<ProjectRecord> {
        self.projects(org_id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("default project of {org_id}")))
    }

    pub async fn create_project(&self, project: &ProjectRecord) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_project(&mut conn, project).await
    }

    // ---- users ------------------------------------------------------------------------

    /// Whether any user exists (a fresh installation has none until its first
    /// organization is created).
    pub async fn has_users(&self) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM users LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email.to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from_row))
    }

    /// Add `user` (created when new) to an organization with a role, in one transaction.
    /// A user already in the organization is a conflict.
    pub async fn add_member(&self, user: &UserRecord, org_id: &str, role: Role) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO users (id, email, password_hash, created_at, blocked_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(id) DO NOTHING")
            .bind(&user.id)
            .bind(user.email.to_ascii_lowercase())
            .bind(&user.password_hash)
            .bind(&user.created_at)
            .bind(&user.blocked_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("a user with the email {} already exists", user.email))
                } else {
                    e.into()
                }
            })?;
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(org_id)
        .bind(&user.id)
        .bind(role.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "{} is already a member of this organization",
                    user.email
                ))
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// The members of an organization, or the one with this id or email.
    pub async fn members(&self, org_id: &str, user: Option<&str>) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.*, m.org_id, m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND (CAST($2 AS TEXT) IS NULL OR u.id = $2 OR u.email = lower($2)) ORDER BY m.created_at, u.email",
        )
        .bind(org_id)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// Every organization a user is a member of, with the role there.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<(OrgRecord, Role)>> {
        let rows = sqlx::query(
            "SELECT o.*, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id \
             WHERE m.user_id = $1 ORDER BY m.created_at",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((org_from_row(r), role_of(r)?)))
            .collect()
    }

    pub async fn set_role(&self, org_id: &str, user_id: &str, role: Role) -> Result<bool> {
        let done =
            sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(org_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Block (`true`) or unblock a user everywhere: a blocked user cannot sign in, their
    /// tokens stop working and their applications' credentials are refused.
    pub async fn set_user_blocked(&self, user_id: &str, blocked: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET blocked_at = $1 WHERE id = $2")
            .bind(blocked.then(now))
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- user tokens ------------------------------------------------------------------

    pub async fn insert_user_token(&self, t: &UserTokenRecord) -> Result<()> {
        sqlx::query("INSERT INTO user_tokens (id, user_id, kind, name, hash, hint, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&t.id)
            .bind(&t.user_id)
            .bind(t.kind.as_str())
            .bind(&t.name)
            .bind(&t.hash)
            .bind(&t.hint)
            .bind(&t.created_at)
            .bind(t.expires_at)
            .bind(&t.revoked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user holding the unrevoked, unexpired token with this hash, if not blocked.
    pub async fn user_of_token(
        &self,
        hash: &str,
        at_unix: i64,
    ) -> Result<Option<(UserRecord, UserTokenRecord)>> {
        let row = sqlx::query(
            "SELECT u.*, t.id AS t_id, t.user_id, t.kind, t.name, t.hash, t.hint, t.created_at AS t_created_at, t.expires_at, t.revoked_at \
             FROM user_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.blocked_at IS NULL",
        )
        .bind(hash)
        .bind(at_unix)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            (
                user_from_row(&r),
                token_from_row(&r, "t_id", "t_created_at"),
            )
        }))
    }

    /// A user's personal access tokens (never sessions), newest last.
    pub async fn personal_tokens(&self, user_id: &str) -> Result<Vec<UserTokenRecord>> {
        let rows = sqlx::query("SELECT * FROM user_tokens WHERE user_id = $1 AND kind = 'personal' ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| token_from_row(r, "id", "created_at"))
            .collect())
    }

    /// Revoke a token of a user by id (any kind); whether one was revoked.
    pub async fn revoke_user_token(&self, user_id: &str, token_id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE user_tokens SET revoked_at = $1 WHERE user_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now())
            .bind(user_id)
            .bind(token_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn insert_project(conn: &mut sqlx::AnyConnection, project: &ProjectRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO projects (id, org_id, handle, name, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&project.id)
    .bind(&project.org_id)
    .bind(&project.handle)
    .bind(&project.name)
    .bind(&project.created_at)
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("the project handle `{}` is taken", project.handle))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn org_from_row(r: &AnyRow) -> OrgRecord {
    OrgRecord {
        id: r.get("id"),
        handle: r.get("handle"),
        name: r.get("name"),
        created_at: r.get("created_at"),
    }
}

fn project_from_row(r: &AnyRow) -> ProjectRecord {
    ProjectRecord {
        id: r.get("id"),
        org_id: r.get("org_id"),
        handle: r.get("handle"),
        name: r.get("name"),
        created_at: r.get("created_at"),
    }
}

fn user_from_row(r: &AnyRow) -> UserRecord {
    UserRecord {
        id: r.get("id"),
        email: r.get("email"),
        password_hash: r.get("password_hash"),
        created_at: r.get("created_at"),
        blocked_at: r.get("blocked_at"),
    }
}

fn role_of(r: &AnyRow) -> Result<Role> {
    Role::from_str(r.get::<&str, _>("role")).map_err(StoreError::Corrupt)
}

fn member_from_row(r: &AnyRow) -> Result<Member> {
    Ok(Member {
        user: user_from_row(r),
        org_id: r.get("org_id"),
        role: role_of(r)?,
        joined_at: r.get("joined_at"),
    })
}

fn token_from_row(r: &AnyRow, id: &str, created_at: &str) -> UserTokenRecord {
    UserTokenRecord {
        id: r.get(id),
        user_id: r.get("user_id"),
        kind: if r.get::<&str, _>("kind") == "session" {
            TokenKind::Session
        } else {
            TokenKind::Personal
        },
        name: r.get("name"),
        hash: r.get("hash"),
        hint: r.get("hint"),
        created_at: r.get(created_at),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
    }
}
