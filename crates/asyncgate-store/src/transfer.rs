//! Moving a whole store between engines (`asyncgate store export|import`): every table's
//! rows as one JSON document, read and written through the same Any driver both engines
//! serve, in the order foreign keys need. An import goes into a store that holds nothing
//! yet (only what its migrations made) and is one transaction: all of it or nothing.

use crate::{Engine, Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Column, Row, TypeInfo};

/// Every table, parents before children.
const TABLES: &[&str] = &[
    "meta",
    "config_version",
    "organizations",
    "projects",
    "users",
    "memberships",
    "user_tokens",
    "apis",
    "revisions",
    "deployments",
    "api_keys",
    "plans",
    "applications",
    "subscriptions",
    "app_keys",
    "signing_keys",
    "identity_providers",
    "deployment_history",
    "lifecycle_history",
    "audit_log",
    "node_tokens",
    "nodes",
];

/// Tables whose ids the database counts (PostgreSQL's identity columns are set past the
/// imported ids).
const COUNTED_IDS: &[&str] = &["audit_log", "deployment_history", "lifecycle_history"];

/// Tables that must be empty for an import: what people made (the rest holds only what
/// migrations seed, replaced by the import).
const MADE_BY_PEOPLE: &[&str] = &[
    "apis",
    "users",
    "applications",
    "plans",
    "audit_log",
    "node_tokens",
];

pub const FORMAT: &str = "asyncgate-store";

/// A whole store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    /// Always `asyncgate-store`.
    pub format: String,
    /// The schema version (the newest migration) the rows are of.
    pub schema_version: i64,
    /// The engine exported from.
    pub engine: String,
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// Column names and whether each holds integers (else text).
    pub columns: Vec<ColumnKind>,
    /// Each row's values in column order (`null`, a number or a string).
    pub rows: Vec<Vec<Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnKind {
    pub name: String,
    pub integer: bool,
}

/// What an import wrote: rows per table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Imported {
    pub tables: Map<String, Value>,
}

impl Store {
    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Every row of every table.
    pub async fn export(&self) -> Result<Export> {
        let mut tables = Vec::new();
        for &name in TABLES {
            let rows: Vec<AnyRow> = sqlx::query(&format!("SELECT * FROM {name}"))
                .fetch_all(&self.pool)
                .await?;
            let columns = match rows.first() {
                Some(r) => r
                    .columns()
                    .iter()
                    .map(|c| ColumnKind {
                        name: c.name().to_string(),
                        integer: is_integer(c.type_info()),
                    })
                    .collect(),
                None => Vec::new(),
            };
            let rows = rows
                .iter()
                .map(|r| {
                    (0..r.columns().len())
                        .map(|i| value_of(r, i))
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            tables.push(Table {
                name: name.to_string(),
                columns,
                rows,
            });
        }
        Ok(Export {
            format: FORMAT.into(),
            schema_version: self.schema_version().await?,
            engine: self.engine.as_str().into(),
            tables,
        })
    }

    /// Write `export` into this store, which must hold nothing people made yet; in one
    /// transaction.
    pub async fn import(&self, export: &Export) -> Result<Imported> {
        if export.format != FORMAT {
            return Err(StoreError::Conflict(format!(
                "this is not an asyncgate store export (format `{}`)",
                export.format
            )));
        }
        let here = self.schema_version().await?;
        if export.schema_version != here {
            return Err(StoreError::Conflict(format!(
                "the export is of schema version {}, this store is at {here}: export and import with the same asyncgate version",
                export.schema_version
            )));
        }
        for &name in MADE_BY_PEOPLE {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {name}"))
                .fetch_one(&self.pool)
                .await?;
            if n > 0 {
                return Err(StoreError::Conflict(format!(
                    "the target store is not empty ({n} rows in {name}): import only into a new store, so that nothing there is lost"
                )));
            }
        }
        for t in &export.tables {
            if !TABLES.contains(&t.name.as_str()) {
                return Err(StoreError::Conflict(format!(
                    "the export holds a table this version does not know: {}",
                    t.name
                )));
            }
        }
        let mut tx = self.begin_write().await?;
        // What migrations seeded goes; the export's rows take its place.
        for &name in TABLES.iter().rev() {
            sqlx::query(&format!("DELETE FROM {name}"))
                .execute(&mut *tx)
                .await?;
        }
        let mut imported = Map::new();
        for &name in TABLES {
            let Some(table) = export.tables.iter().find(|t| t.name == name) else {
                continue;
            };
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            for c in &names {
                if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    return Err(StoreError::Corrupt(format!(
                        "a column named {c:?} in {name}"
                    )));
                }
            }
            let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {name} ({}) VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            );
            for row in &table.rows {
                if row.len() != names.len() {
                    return Err(StoreError::Corrupt(format!(
                        "a row of {name} has {} values for {} columns",
                        row.len(),
                        names.len()
                    )));
                }
                let mut query = sqlx::query(&sql);
                for (value, column) in row.iter().zip(&table.columns) {
                    query = match (value, column.integer) {
                        (Value::Null, true) => query.bind(None::<i64>),
                        (Value::Null, false) => query.bind(None::<String>),
                        (Value::Number(n), _) => query.bind(n.as_i64().ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "{n} in {name}.{} is not an integer",
                                column.name
                            ))
                        })?),
                        (Value::String(s), _) => query.bind(s.clone()),
                        (other, _) => {
                            return Err(StoreError::Corrupt(format!(
                                "{other} in {name}.{} is neither text nor a number",
                                column.name
                            )))
                        }
                    };
                }
                query.execute(&mut *tx).await?;
            }
            imported.insert(name.to_string(), Value::from(table.rows.len()));
        }
        if self.engine == Engine::Postgres {
            for &name in COUNTED_IDS {
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Imported { tables: imported })
    }
}

fn is_integer(t: &sqlx::any::AnyTypeInfo) -> bool {
    t.kind().is_integer()
        || matches!(
            t.name().to_ascii_uppercase().as_str(),
            "INTEGER" | "BIGINT" | "INT8" | "INT4"
        )
}

/// Column `i` of `r` as JSON: null, an integer or text.
fn value_of(r: &AnyRow, i: usize) -> Result<Value> {
    if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
        return Ok(v.map(Value::from).unwrap_or(Value::Null));
    }
    match r.try_get::<Option<String>, _>(i) {
        Ok(v) => Ok(v.map(Value::from).unwrap_or(Value::Null)),
        Err(e) => Err(StoreError::Corrupt(format!(
            "column {} cannot be exported: {e}",
            r.columns()[i].name()
        ))),
    }
}
