//! What several control planes and their gateway nodes share through the store: the
//! platform's configuration version, change notices between control planes (PostgreSQL's
//! LISTEN/NOTIFY), node tokens, and the nodes as last heard from.

use crate::{Engine, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The channel control planes announce published changes on.
const CHANNEL: &str = "asyncgate_changes";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTokenRecord {
    pub id: String,
    pub name: String,
    /// The one environment a node with this token may serve.
    pub environment: String,
    pub hash: String,
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A gateway node as last heard from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub id: String,
    pub environment: String,
    pub token_id: String,
    pub hostname: String,
    /// JSON object: the node's listener URLs by kind.
    pub listeners: String,
    pub applied_version: u64,
    pub connections: u64,
    /// `serving` or `draining`.
    pub state: String,
    /// The management URL of the control plane it last called.
    pub control_plane: String,
    /// Where the node takes connection commands (its status listener), and the secret it
    /// asks of them (made at its start, sent over its authenticated sync call).
    pub command_url: String,
    pub command_secret: String,
    pub first_seen: String,
    /// Unix seconds.
    pub last_contact: i64,
}

impl Store {
    /// Count one more published change; the new configuration version.
    pub async fn next_config_version(&self) -> Result<u64> {
        let version: i64 = sqlx::query_scalar(
            "UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(version as u64)
    }

    /// The configuration version now.
    pub async fn config_version(&self) -> Result<u64> {
        let version: i64 = sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(version as u64)
    }

    /// Tell the other control planes on this store that `version` was published (on
    /// SQLite, which one process owns, there is no one to tell).
    pub async fn announce_change(&self, version: u64) -> Result<()> {
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(version.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Changes other control planes announce, or `None` on SQLite.
    pub async fn change_feed(&self) -> Result<Option<ChangeFeed>> {
        let Some(url) = &self.postgres_url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeFeed { listener }))
    }

    // ---- node tokens ------------------------------------------------------------------

    pub async fn insert_node_token(&self, t: &NodeTokenRecord) -> Result<()> {
        sqlx::query("INSERT INTO node_tokens (id, name, environment, hash, hint, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.environment)
            .bind(&t.hash)
            .bind(&t.hint)
            .bind(&t.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn node_tokens(&self) -> Result<Vec<NodeTokenRecord>> {
        let rows = sqlx::query("SELECT * FROM node_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(node_token_from_row).collect())
    }

    /// The unrevoked node token with this hash.
    pub async fn node_token_by_hash(&self, hash: &str) -> Result<Option<NodeTokenRecord>> {
        let row = sqlx::query("SELECT * FROM node_tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(node_token_from_row))
    }

    /// Revoke a node token; false when there is no unrevoked one with that id.
    pub async fn revoke_node_token(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE node_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(crate::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- nodes ------------------------------------------------------------------------

    /// Record what a node reported when it called (its first call adds it).
    pub async fn node_seen(&self, n: &NodeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, environment, token_id, hostname, listeners, applied_version, connections, state, control_plane, first_seen, last_contact, command_url, command_secret)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO UPDATE SET environment = excluded.environment, token_id = excluded.token_id,
                hostname = excluded.hostname, listeners = excluded.listeners, applied_version = excluded.applied_version,
                connections = excluded.connections, state = excluded.state, control_plane = excluded.control_plane,
                last_contact = excluded.last_contact, command_url = excluded.command_url, command_secret = excluded.command_secret",
        )
        .bind(&n.id)
        .bind(&n.environment)
        .bind(&n.token_id)
        .bind(&n.hostname)
        .bind(&n.listeners)
        .bind(n.applied_version as i64)
        .bind(n.connections as i64)
        .bind(&n.state)
        .bind(&n.control_plane)
        .bind(&n.first_seen)
        .bind(n.last_contact)
        .bind(&n.command_url)
        .bind(&n.command_secret)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY environment, first_seen, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(node_from_row).collect())
    }

    /// Forget a node (it is added again when it calls).
    pub async fn delete_node(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("node {id}")));
        }
        Ok(())
    }
}

/// Changes announced by the control planes that share a PostgreSQL store.
pub struct ChangeFeed {
    listener: sqlx::postgres::PgListener,
}

/// What the feed heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A control plane published this version.
    Published(u64),
    /// The connection was lost and made again: announcements may have been missed.
    Reconnected,
}

impl ChangeFeed {
    /// The next announcement. An error means PostgreSQL cannot be reached now; the next
    /// call tries again.
    pub async fn next(&mut self) -> Result<Heard> {
        match self.listener.try_recv().await? {
            Some(n) => Ok(n
                .payload()
                .parse()
                .map(Heard::Published)
                .unwrap_or(Heard::Reconnected)),
            None => Ok(Heard::Reconnected),
        }
    }
}

fn node_token_from_row(r: &AnyRow) -> NodeTokenRecord {
    NodeTokenRecord {
        id: r.get("id"),
        name: r.get("name"),
        environment: r.get("environment"),
        hash: r.get("hash"),
        hint: r.get("hint"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
    }
}

fn node_from_row(r: &AnyRow) -> NodeRecord {
    NodeRecord {
        id: r.get("id"),
        environment: r.get("environment"),
        token_id: r.get("token_id"),
        hostname: r.get("hostname"),
        listeners: r.get("listeners"),
        applied_version: r.get::<i64, _>("applied_version") as u64,
        connections: r.get::<i64, _>("connections") as u64,
        state: r.get("state"),
        control_plane: r.get("control_plane"),
        command_url: r.get("command_url"),
        command_secret: r.get("command_secret"),
        first_seen: r.get("first_seen"),
        last_contact: r.get("last_contact"),
    }
}
