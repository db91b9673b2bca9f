//! Where the store lives: `--store` and `store` in the configuration, read once into a
//! `StoreLocation` (an SQLite file, or a PostgreSQL URL).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A store's place: `sqlite:PATH` (a file, created if missing) or
/// `postgres://user:password@host:port/database` (the database must exist).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreLocation {
    pub fn engine(&self) -> Engine {
        match self {
            StoreLocation::Sqlite(_) => Engine::Sqlite,
            StoreLocation::Postgres(_) => Engine::Postgres,
        }
    }
}

/// Why a store location cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(String);

impl FromStr for StoreLocation {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<StoreLocation, LocationError> {
        let s = s.trim();
        if let Some(path) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(LocationError(
                    "the store `sqlite:` needs a file path, as in sqlite:/var/lib/asyncgate/asyncgate.db".into(),
                ));
            }
            return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let url = url::Url::parse(s)
                .map_err(|e| LocationError(format!("the store URL is not a valid URL: {e}")))?;
            if url.host_str().unwrap_or_default().is_empty() && !s.contains("host=") {
                return Err(LocationError(
                    "the PostgreSQL store URL names no host, as in postgres://asyncgate@db.example:5432/asyncgate".into(),
                ));
            }
            return Ok(StoreLocation::Postgres(s.to_string()));
        }
        Err(LocationError(format!(
            "unsupported store `{}`: use sqlite:PATH or postgres://user@host:port/database",
            redact(s)
        )))
    }
}

/// The location with any password replaced, for logs and messages.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `text` with the password of a URL (and a `password=` parameter) hidden.
fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            let hidden: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !hidden.is_empty() {
                url.query_pairs_mut().clear().extend_pairs(hidden);
            }
            url.to_string()
        }
        Err(_) => text.split('@').next_back().unwrap_or_default().to_string(),
    }
}

/// The URL sqlx's Any driver opens an SQLite file by (its path percent-encoded).
pub(crate) fn sqlite_url(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let encoded: String = absolute
        .to_string_lossy()
        .split('/')
        .map(|segment| {
            percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("/");
    format!("sqlite://{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_once_into_their_engine() {
        assert_eq!(
            "sqlite:/var/lib/a.db".parse::<StoreLocation>().unwrap(),
            StoreLocation::Sqlite("/var/lib/a.db".into())
        );
        assert_eq!(
            "sqlite://data/a.db".parse::<StoreLocation>().unwrap(),
            StoreLocation::Sqlite("data/a.db".into())
        );
        let pg: StoreLocation = "postgres://ag:secret@db:5432/ag".parse().unwrap();
        assert_eq!(pg.engine(), Engine::Postgres);
        assert_eq!(pg.to_string(), "postgres://ag:***@db:5432/ag");
        assert!(!format!("{pg:?}").contains("secret"));
        let e = "mysql://root:pw@db/x".parse::<StoreLocation>().unwrap_err();
        assert!(e.to_string().contains("unsupported store"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
        assert!("sqlite:".parse::<StoreLocation>().is_err());
        assert!("postgres://".parse::<StoreLocation>().is_err());
    }

    #[test]
    fn an_sqlite_path_survives_the_url() {
        let url = sqlite_url(Path::new("/tmp/a b/x?y#z.db"));
        assert_eq!(url, "sqlite:///tmp/a%20b/x%3Fy%23z%2Edb");
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        assert_eq!(options.get_filename(), Path::new("/tmp/a b/x?y#z.db"));
    }
}
