//! One process running both planes: the store, the management API and the gateway's
//! environment listeners (served on the gateway's own worker threads), wired by a
//! snapshot stream; started and stopped as a unit.

use crate::config::ServeConfig;
use crate::endpoints::{Endpoints, ListenerUrls, ADMIN_TOKEN_FILE};
use anyhow::Context;
use asyncgate_control::{AppState, ControlConfig, EnvironmentEndpoints, Publisher};
use asyncgate_core::credential::{generate_secret, hash_secret, ADMIN_TOKEN_PREFIX};
use asyncgate_core::ListenerKind;
use asyncgate_gateway::workers::{ListenerSpec, Workers};
use asyncgate_gateway::Gateway;
use asyncgate_store::{Engine, Store, StoreLocation};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

const ADMIN_HASH_KEY: &str = "admin_token_hash";
/// The SQLite store's file in the data folder, unless `store` says otherwise.
pub const SQLITE_FILE: &str = "asyncgate.db";

/// A running platform. Dropping it without `shutdown` leaves its tasks running until the
/// runtime ends.
pub struct Platform {
    pub endpoints: Endpoints,
    /// The admin token, when this start created it (first start, or after the token
    /// file was deleted); otherwise it is only in the token file.
    pub new_admin_token: Option<String>,
    /// Firing it stops the listeners and closes live connections with 1001.
    shutdown: watch::Sender<bool>,
    /// The listener and management tasks; joined on shutdown.
    tasks: JoinSet<()>,
    store: Store,
    gateway: Gateway,
    /// The data plane's threads; joined on shutdown.
    workers: Option<Workers>,
    drain: std::time::Duration,
    /// Where the management listener is bound (its URL may be a public one).
    management_addr: std::net::SocketAddr,
    /// Held for the platform's lifetime so that two processes never share a data folder;
    /// released when dropped.
    _lock: std::fs::File,
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what} listener"))
}

impl Platform {
    pub async fn start(config: ServeConfig) -> anyhow::Result<Platform> {
        config.validate()?;
        let data_dir = &config.data_dir;
        create_private_dir(data_dir)?;
        let lock = lock_data_dir(data_dir)?;
        let location = config
            .store
            .clone()
            .unwrap_or_else(|| StoreLocation::Sqlite(data_dir.join(SQLITE_FILE)));
        let store = Store::connect(&location)
            .await
            .with_context(|| format!("opening the store {location}"))?;

        let token_path = data_dir.join(ADMIN_TOKEN_FILE);
        let mut new_admin_token = None;
        let admin_hash = match (store.meta(ADMIN_HASH_KEY).await?, token_path.exists()) {
            (Some(hash), true) => hash,
            // A shared store's admin token was made by the control plane that first
            // opened it (it is in that one's token file); another one keeps it.
            (Some(hash), false) if store.engine() == Engine::Postgres => hash,
            _ => {
                let token = generate_secret(ADMIN_TOKEN_PREFIX);
                write_private(&token_path, &token)?;
                let hash = hash_secret(&token);
                store.set_meta(ADMIN_HASH_KEY, &hash).await?;
                new_admin_token = Some(token);
                hash
            }
        };
        store
            .ensure_default_plans(asyncgate_store::DEFAULT_ORG_ID)
            .await?;
        asyncgate_control::signing::ensure_current(
            &store,
            config.signing_key_rotation.as_secs() as i64,
        )
        .await
        .map_err(|e| anyhow::anyhow!("signing keys: {}", e.detail))?;

        // Load every certificate and bind everything before serving anything, so a bad
        // file or a taken port fails the start cleanly.
        let management_tls = load_tls(&config.management_options, "management")?;
        let management = bind(config.management, "management").await?;
        let management_addr = management.local_addr()?;
        let mut env_listeners = Vec::new();
        for env in &config.environments {
            let ext_tls = load_tls(&env.external_options, &format!("{} external", env.name))?;
            let int_tls = load_tls(&env.internal_options, &format!("{} internal", env.name))?;
            let ext = bind(env.external, &format!("{} external", env.name)).await?;
            let int = bind(env.internal, &format!("{} internal", env.name)).await?;
            env_listeners.push((env, (ext, ext_tls), (int, int_tls)));
        }
        let mut environments = Vec::new();
        let mut env_urls = BTreeMap::new();
        for (env, (ext, _), (int, _)) in &env_listeners {
            let name = &env.name;
            let urls = ListenerUrls {
                external: env.external_options.url(ext.local_addr()?, "ws", "wss"),
                internal: env.internal_options.url(int.local_addr()?, "ws", "wss"),
            };
            environments.push(EnvironmentEndpoints {
                name: name.clone(),
                external: urls.external.clone(),
                internal: urls.internal.clone(),
            });
            env_urls.insert(name.clone(), urls);
        }

        let management_url =
            config
                .management_options
                .url(management.local_addr()?, "http", "https");
        let publisher = Arc::new(Publisher::new(management_url.clone()));
        // Mocks of APIs whose target is `mock:`, on loopback only.
        let mocks = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        publisher.serve_mocks_at(format!("ws://{}", mocks.local_addr()?));
        publisher.publish(&store).await?;
        let descriptors = asyncgate_gateway::intake::raise_descriptor_limit();
        tracing::debug!(descriptors, "file descriptor limit");
        let mut gateway_config = config.gateway.clone();
        if let Some(file) = &mut gateway_config.access_log.file {
            // A relative access-log path is inside the data folder.
            *file = data_dir.join(&*file);
        }
        let gateway = Gateway::new(gateway_config).map_err(crate::config::ConfigError)?;
        if let Some(url) = &config.redis {
            gateway
                .share_counters(url, &counter_instance("platform"))
                .await
                .map_err(crate::config::ConfigError)?;
        }
        gateway.apply(&publisher.current());
        publisher.wait_for_gateway(gateway.applied());

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        {
            let gateway = gateway.clone();
            let updates = publisher.subscribe();
            let mut stop = shutdown_rx.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = gateway.follow(updates) => {}
                    _ = stop.changed() => {}
                }
            });
        }
        {
            // Control planes sharing PostgreSQL rebuild on each other's changes.
            let (publisher, store) = (publisher.clone(), store.clone());
            let mut stop = shutdown_rx.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = publisher.follow_store(store) => {}
                    _ = stop.changed() => {}
                }
            });
        }
        tasks.spawn(crate::mock::hub(mocks, store.clone(), shutdown_rx.clone()));
        let mut specs = Vec::new();
        let mut all_tls: Vec<_> = management_tls.iter().cloned().collect();
        for (env, ext, int) in env_listeners {
            for ((listener, tls), kind) in
                [(ext, ListenerKind::External), (int, ListenerKind::Internal)]
            {
                all_tls.extend(tls.clone());
                specs.push(ListenerSpec {
                    environment: env.name.clone(),
                    kind,
                    socket: listener.into_std()?,
                    tls,
                });
            }
        }
        tasks.spawn(asyncgate_gateway::tls::follow_files(
            all_tls,
            config.tls_reload_interval,
            shutdown_rx.clone(),
        ));
        let workers = gateway.start_workers(specs, shutdown_rx.clone(), config.drain)?;

        let state = AppState {
            store: store.clone(),
            config: Arc::new(ControlConfig {
                environments,
                import: config.import.clone(),
                default_project: config.default_project.clone(),
                test_token_ttl: config.test_token_ttl,
                session_ttl: config.session_ttl,
                access_token_ttl: config.access_token_ttl,
                metrics_open_to: config.metrics_open_to.clone(),
                secure_cookies: management_url.starts_with("https://"),
            }),
            publisher,
            admin_token_hash: admin_hash.into(),
            login_limiter: asyncgate_control::state::login_limiter(),
            data_plane: Arc::new(crate::dataplane::GatewayPlane(gateway.clone())),
        };
        if let Some(requests) = gateway.key_refresh_requests() {
            let (state, every) = (state.clone(), config.provider_refresh);
            let mut stop = shutdown_rx.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = asyncgate_control::providers::follow(state, requests, every) => {}
                    _ = stop.changed() => {}
                }
            });
        }
        {
            let router = asyncgate_control::router(state);
            let mut stop = shutdown_rx.clone();
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let stopped = async move {
                let _ = stop.changed().await;
            };
            match management_tls {
                None => {
                    tasks.spawn(async move {
                        let served = axum::serve(management, service)
                            .with_graceful_shutdown(stopped)
                            .await;
                        if let Err(e) = served {
                            tracing::error!(error = %e, "management API stopped");
                        }
                    });
                }
                Some(tls) => {
                    use axum::serve::ListenerExt as _;
                    // `tap_io` lets the server tell handlers the client's address.
                    let listener = crate::management_tls::TlsListener::new(
                        management,
                        tls,
                        config.gateway.request_head_timeout,
                    )
                    .tap_io(|_| {});
                    tasks.spawn(async move {
                        let served = axum::serve(listener, service)
                            .with_graceful_shutdown(stopped)
                            .await;
                        if let Err(e) = served {
                            tracing::error!(error = %e, "management API stopped");
                        }
                    });
                }
            }
        }

        let endpoints = Endpoints {
            openapi: format!(
                "{management_url}{}/openapi.json",
                asyncgate_control::API_PREFIX
            ),
            portal: format!(
                "{management_url}{}/portal/apis",
                asyncgate_control::API_PREFIX
            ),
            console: format!("{management_url}/console/"),
            portal_site: format!("{management_url}/portal/"),
            management: management_url,
            environments: env_urls,
            admin_token_file: std::fs::canonicalize(&token_path).unwrap_or(token_path),
            pid: std::process::id(),
        };
        endpoints.write(data_dir)?;
        Ok(Platform {
            endpoints,
            new_admin_token,
            shutdown,
            tasks,
            store,
            gateway,
            workers: Some(workers),
            drain: config.drain,
            management_addr,
            _lock: lock,
        })
    }

    /// Stop accepting, close live connections with 1001, wait for the tasks (at most the
    /// drain period), close the store.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.drain, wait).await.is_err() {
            self.tasks.abort_all();
        }
        // The gateway workers give live connections the drain period to close.
        if let Some(workers) = self.workers.take() {
            let _ = tokio::task::spawn_blocking(move || workers.join()).await;
        }
        self.store.close().await;
    }

    /// The data plane of this process (live connections, current snapshot).
    /// The store (tests close it to see readiness fall).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The address the management listener is bound to.
    pub fn management_addr(&self) -> std::net::SocketAddr {
        self.management_addr
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Human-readable list of what is served, one per line.
    pub fn describe(&self) -> String {
        let e = &self.endpoints;
        let mut out = format!(
            "console         {}\ndeveloper portal {}\nmanagement API  {}\nOpenAPI         {}\nportal (JSON)   {}\n",
            e.console, e.portal_site, e.management, e.openapi, e.portal
        );
        for (name, urls) in &e.environments {
            out.push_str(&format!(
                "{name:<15} external {}  internal {}\n",
                urls.external, urls.internal
            ));
        }
        out.push_str(&format!(
            "admin token     {}\n",
            e.admin_token_file.display()
        ));
        out
    }
}

/// A listener's TLS, loaded from its files (the error names the listener and the file).
pub(crate) fn load_tls(
    options: &crate::config::ListenerOptions,
    what: &str,
) -> anyhow::Result<Option<Arc<asyncgate_gateway::tls::ServerTls>>> {
    options
        .tls
        .clone()
        .map(asyncgate_gateway::tls::ServerTls::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("TLS of the {what} listener: {e}"))
}

/// The name a gateway process counts its connections under in Redis: its node's name
/// and a part new at every start, so that the places of a process that died are never
/// taken for a restarted one's (they expire with the dead one's heartbeat).
pub(crate) fn counter_instance(node: &str) -> String {
    asyncgate_core::credential::new_id(&format!("{node}-"))
}

pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data folder {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// An exclusive lock on `<data-dir>/lock`, or an error naming the process that holds it.
pub(crate) fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        anyhow::bail!(
            "another asyncgate (pid {}) is using the data folder {}",
            holder.trim(),
            dir.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

pub(crate) fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(f, "{content}")?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, format!("{content}\n"))
            .with_context(|| format!("writing {}", path.display()))
    }
}
