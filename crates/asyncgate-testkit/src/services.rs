//! Temporary PostgreSQL and Redis servers for tests: Debian's programs (installed by
//! `scripts/services install`, which `scripts/test` runs), each started on a free port of
//! 127.0.0.1 in its own temporary folder (PostgreSQL as an unprivileged user when the
//! tests run as root) and stopped when dropped.

use anyhow::{anyhow, bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// What to run when a program is missing.
const INSTALL_HINT: &str = "run `scripts/services install` (scripts/test does)";

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// The newest of Debian's PostgreSQL versions installed (`/usr/lib/postgresql/N/bin`).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| anyhow!("PostgreSQL is not installed: {INSTALL_HINT}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| anyhow!("PostgreSQL's server programs are not installed: {INSTALL_HINT}"))
}

/// The user a database server runs as: `nobody` when the tests run as root (PostgreSQL
/// refuses to run as root), else the tests' own.
fn unprivileged() -> Option<(u32, u32)> {
    rustix::process::geteuid()
        .is_root()
        .then_some((65534, 65534))
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A PostgreSQL server of its own, in a temporary folder; stopped (fast shutdown) when
/// dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    running: bool,
}

impl Postgres {
    /// Create a cluster (`initdb`, trust authentication on loopback only) and start it.
    pub async fn start() -> anyhow::Result<Postgres> {
        tokio::task::spawn_blocking(Postgres::start_blocking).await?
    }

    fn start_blocking() -> anyhow::Result<Postgres> {
        let bin = postgres_bin()?;
        let dir = tempfile::Builder::new().prefix("asyncgate-pg").tempdir()?;
        let user = unprivileged();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port()?,
            user,
            running: false,
        };
        let data = pg.data();
        run(
            pg.command("initdb")
                .arg("--pgdata")
                .arg(&data)
                .args(["--username", "postgres", "--auth", "trust", "--no-sync"])
                .args(["--encoding", "UTF8", "--locale", "C"]),
            "initdb",
        )?;
        pg.start_blocking_again()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c.current_dir(self.dir.path());
        c
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    fn start_blocking_again(&mut self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        run(
            self.command("pg_ctl")
                .arg("start")
                .arg("--pgdata")
                .arg(self.data())
                .args(["--wait", "--timeout", "120", "--silent"])
                .arg("--log")
                .arg(self.dir.path().join("server.log"))
                .args(["-o", &options]),
            "pg_ctl start",
        )?;
        self.running = true;
        Ok(())
    }

    fn stop_blocking(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        run(
            self.command("pg_ctl")
                .arg("stop")
                .arg("--pgdata")
                .arg(self.data())
                .args(["--mode", "fast", "--wait", "--timeout", "120", "--silent"]),
            "pg_ctl stop",
        )
    }

    /// Stop the server (its connections are cut); its data stays.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        tokio::task::block_in_place(|| self.stop_blocking())
    }

    /// Start it again on the same port and data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        tokio::task::block_in_place(|| self.start_blocking_again())
    }

    /// The URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new empty database; its URL.
    pub async fn create_database(&self) -> anyhow::Result<String> {
        create_database(&self.url("postgres")).await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop_blocking() {
            eprintln!("stopping the test PostgreSQL: {e}");
        }
    }
}

/// A new empty database on the server whose maintenance database is at `admin_url`;
/// the new one's URL.
pub async fn create_database(admin_url: &str) -> anyhow::Result<String> {
    use sqlx::{ConnectOptions, Connection, Executor};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "asyncgate_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let options: sqlx::postgres::PgConnectOptions = admin_url
        .parse()
        .with_context(|| format!("the PostgreSQL URL {admin_url}"))?;
    let mut conn = options
        .connect()
        .await
        .with_context(|| format!("connecting to the test PostgreSQL at {admin_url}"))?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// A Redis server of its own (no persistence), in a temporary folder; killed when dropped.
pub struct Redis {
    _dir: tempfile::TempDir,
    port: u16,
    child: Option<tokio::process::Child>,
}

impl Redis {
    pub async fn start() -> anyhow::Result<Redis> {
        let dir = tempfile::Builder::new()
            .prefix("asyncgate-redis")
            .tempdir()?;
        let mut redis = Redis {
            _dir: dir,
            port: free_port()?,
            child: None,
        };
        redis.start_again().await?;
        Ok(redis)
    }

    /// Start the server (again, on the same port); returns once it answers PING.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let program = which("redis-server")
            .ok_or_else(|| anyhow!("redis-server is not installed: {INSTALL_HINT}"))?;
        let child = tokio::process::Command::new(program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self._dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server")?;
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        crate::eventually_async("Redis to answer PING", || async {
            ping(&addr).await.unwrap_or(false)
        })
        .await
    }

    /// Kill the server (clients see their connections cut).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Whether a Redis server at `addr` answers `PING` with `+PONG`.
async fn ping(addr: &str) -> anyhow::Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(b"PING\r\n").await?;
    let mut answer = [0u8; 7];
    tcp.read_exact(&mut answer).await?;
    Ok(&answer == b"+PONG\r\n")
}

/// `program` found on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
