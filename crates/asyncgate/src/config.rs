//! One typed configuration for `serve` and `demo`: defaults, then the config file, then
//! flags, validated before any socket is bound. Bad configuration exits with code 64.

use asyncgate_control::ImportPolicy;
use asyncgate_gateway::forwarded::TrustedProxies;
use asyncgate_gateway::GatewayConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit code for configuration errors (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

pub const DEFAULT_DATA_DIR: &str = "./asyncgate-data";

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone)]
pub struct EnvironmentListen {
    pub name: String,
    pub external: SocketAddr,
    pub internal: SocketAddr,
    pub external_options: ListenerOptions,
    pub internal_options: ListenerOptions,
}

/// What a listener may have besides its address: TLS, and the URL clients use to reach
/// it (behind a load balancer or a DNS name) shown instead of the bound address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    pub tls: Option<asyncgate_gateway::tls::TlsFiles>,
    /// Without a trailing slash.
    pub public_url: Option<String>,
}

impl ListenerOptions {
    /// The URL shown for a listener bound at `addr`: its public URL, else the address
    /// with the scheme `plain`, or `secure` with TLS (such as `ws` and `wss`).
    pub fn url(&self, addr: SocketAddr, plain: &str, secure: &str) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let scheme = if self.tls.is_some() { secure } else { plain };
        let shown = asyncgate_gateway::listener::ws_url(addr);
        format!("{scheme}://{}", shown.trim_start_matches("ws://"))
    }
}

/// The access log's file unless configured: in the data folder.
pub const DEFAULT_ACCESS_LOG: &str = "access.log";

/// Everything `asyncgate serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Where the store is (`store`, `--store`): by default `asyncgate.db` (SQLite) in the
    /// data folder; `postgres://...` for control planes that share PostgreSQL.
    pub store: Option<asyncgate_store::StoreLocation>,
    /// Redis for connection limits held across gateways (`redis`, `--redis`).
    pub redis: Option<String>,
    pub management: SocketAddr,
    pub management_options: ListenerOptions,
    /// In promotion order (a promotion goes only to the next one): by default
    /// development then production; environments listed in the configuration file
    /// follow in the file's order, after defaults it does not list.
    pub environments: Vec<EnvironmentListen>,
    pub import: ImportPolicy,
    pub gateway: GatewayConfig,
    pub default_project: String,
    pub test_token_ttl: Duration,
    /// Lifetime of a signed-in session (`session_ttl_seconds`, default 12 hours).
    pub session_ttl: Duration,
    /// Lifetime of OAuth2 access tokens (`access_token_ttl_seconds`, default 1 hour).
    pub access_token_ttl: Duration,
    /// Age at which the token signing key is replaced at start
    /// (`signing_key_rotation_days`, default 30).
    pub signing_key_rotation: Duration,
    /// How often identity providers' keys are fetched again
    /// (`provider_refresh_seconds`, default 1 hour).
    pub provider_refresh: Duration,
    /// How long live connections get to close on shutdown.
    pub drain: Duration,
    /// Networks whose peers may read `/metrics` without the admin token
    /// (`metrics.open_to`).
    pub metrics_open_to: asyncgate_core::Networks,
    /// How often TLS certificate and key files are looked at for changes
    /// (`tls_reload_seconds`, default 10; SIGHUP reloads at once).
    pub tls_reload_interval: Duration,
}

impl ServeConfig {
    /// Defaults: everything on 127.0.0.1, management on 9400, development on 9401 (external)
    /// and 9402 (internal), production on 9403 and 9404.
    pub fn defaults(data_dir: PathBuf) -> ServeConfig {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut gateway = GatewayConfig::default();
        // Relative to the data folder (see `Platform::start`).
        gateway.access_log.file = Some(PathBuf::from(DEFAULT_ACCESS_LOG));
        ServeConfig {
            data_dir,
            store: None,
            redis: None,
            management: addr(9400),
            management_options: ListenerOptions::default(),
            environments: vec![
                EnvironmentListen {
                    name: "development".into(),
                    external: addr(9401),
                    internal: addr(9402),
                    external_options: ListenerOptions::default(),
                    internal_options: ListenerOptions::default(),
                },
                EnvironmentListen {
                    name: "production".into(),
                    external: addr(9403),
                    internal: addr(9404),
                    external_options: ListenerOptions::default(),
                    internal_options: ListenerOptions::default(),
                },
            ],
            import: ImportPolicy::default(),
            gateway,
            default_project: "default".into(),
            test_token_ttl: Duration::from_secs(900),
            session_ttl: Duration::from_secs(12 * 3600),
            access_token_ttl: Duration::from_secs(3600),
            signing_key_rotation: Duration::from_secs(30 * 86_400),
            provider_refresh: Duration::from_secs(3600),
            drain: Duration::from_secs(10),
            metrics_open_to: asyncgate_core::Networks::default(),
            tls_reload_interval: Duration::from_secs(10),
        }
    }

    /// Every address on port 0, for tests.
    pub fn ephemeral(data_dir: PathBuf) -> ServeConfig {
        let mut c = ServeConfig::defaults(data_dir);
        let zero = SocketAddr::from(([127, 0, 0, 1], 0));
        c.management = zero;
        for e in &mut c.environments {
            e.external = zero;
            e.internal = zero;
        }
        c
    }

    pub fn environment_mut(&mut self, name: &str) -> &mut EnvironmentListen {
        if let Some(i) = self.environments.iter().position(|e| e.name == name) {
            return &mut self.environments[i];
        }
        let zero = SocketAddr::from(([127, 0, 0, 1], 0));
        self.environments.push(EnvironmentListen {
            name: name.into(),
            external: zero,
            internal: zero,
            external_options: ListenerOptions::default(),
            internal_options: ListenerOptions::default(),
        });
        self.environments.last_mut().expect("just pushed")
    }

    /// Apply a YAML config file on top of this configuration.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let file: FileConfig = serde_saphyr::from_str(&text)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        if let Some(d) = file.data_dir {
            self.data_dir = d;
        }
        if let Some(store) = file.store {
            self.store = Some(parse_store(&store, "store")?);
        }
        if let Some(redis) = file.redis {
            self.redis = Some(redis);
        }
        if let Some(p) = file.project {
            self.default_project = p;
        }
        if let Some(l) = file.listen {
            if let Some(m) = l.management {
                m.apply(
                    "listen.management",
                    &["http", "https"],
                    &mut self.management,
                    &mut self.management_options,
                )?;
            }
            let listed = l.environments.unwrap_or_default();
            // Promotion order: environments the file does not list (of the defaults)
            // first, then the listed ones in the file's order.
            let names: Vec<String> = listed.iter().map(|e| e.name.clone()).collect();
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    return Err(ConfigError(format!(
                        "listen.environments names {name} twice"
                    )));
                }
            }
            for e in listed {
                let env = self.environment_mut(&e.name);
                if let Some(l) = e.external {
                    l.apply(
                        &format!("listen.environments.{}.external", e.name),
                        &["ws", "wss"],
                        &mut env.external,
                        &mut env.external_options,
                    )?;
                }
                if let Some(l) = e.internal {
                    l.apply(
                        &format!("listen.environments.{}.internal", e.name),
                        &["ws", "wss"],
                        &mut env.internal,
                        &mut env.internal_options,
                    )?;
                }
            }
            self.environments
                .sort_by_key(|e| names.iter().position(|n| *n == e.name).map_or(0, |i| i + 1));
        }
        if let Some(i) = file.import {
            if let Some(v) = i.allow_private_addresses {
                self.import.allow_private_addresses = v;
            }
            if let Some(v) = i.allow_absolute_references {
                self.import.allow_absolute_references = v;
            }
            if let Some(v) = i.max_bytes {
                self.import.limits.max_bytes = v;
            }
            if let Some(v) = i.timeout_seconds {
                self.import.timeout = Duration::from_secs(v);
            }
        }
        if let Some(g) = file.gateway {
            if let Some(v) = g.connect_timeout_ms {
                self.gateway.connect_timeout = Duration::from_millis(v);
            }
            if let Some(v) = g.undeploy_grace_seconds {
                self.gateway.undeploy_grace = Duration::from_secs(v);
            }
            if let Some(v) = g.read_buffer_bytes {
                self.gateway.read_buffer_bytes = v;
            }
            if let Some(v) = g.workers {
                self.gateway.workers = v;
            }
            if let Some(v) = g.backend_ca_file {
                self.gateway.backend_ca_file = Some(v);
            }
            if let Some(v) = g.drain_seconds {
                self.drain = Duration::from_secs(v);
            }
            if let Some(v) = g.request_head_timeout_seconds {
                self.gateway.request_head_timeout = Duration::from_secs(v);
            }
            if let Some(v) = g.max_connections {
                self.gateway.max_connections = v;
            }
            if let Some(v) = g.max_pending_handshakes {
                self.gateway.max_pending_handshakes = v;
            }
            if let Some(v) = g.max_pending_handshakes_per_address {
                self.gateway.max_pending_handshakes_per_address = v;
            }
            if let Some(v) = g.trusted_proxies {
                self.gateway.trusted_proxies = TrustedProxies::parse(&v)
                    .map_err(|e| ConfigError(format!("gateway.trusted_proxies: {e}")))?;
            }
            if let Some(log) = g.access_log {
                let access_log = &mut self.gateway.access_log;
                if let Some(format) = log.format {
                    access_log.format = format
                        .parse()
                        .map_err(|e| ConfigError(format!("gateway.access_log.format: {e}")))?;
                }
                match log.file.as_deref() {
                    Some(p) if p == std::path::Path::new("-") => access_log.file = None,
                    Some(p) => access_log.file = Some(p.to_path_buf()),
                    None => {}
                }
                if let Some(enabled) = log.enabled {
                    access_log.off = !enabled;
                }
            }
        }
        if let Some(m) = file.metrics {
            if let Some(v) = m.open_to {
                self.metrics_open_to = asyncgate_core::Networks::parse(&v)
                    .map_err(|e| ConfigError(format!("metrics.open_to: {e}")))?;
            }
        }
        if let Some(v) = file.test_token_ttl_seconds {
            self.test_token_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.session_ttl_seconds {
            self.session_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.access_token_ttl_seconds {
            self.access_token_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.signing_key_rotation_days {
            self.signing_key_rotation = Duration::from_secs(v * 86_400);
        }
        if let Some(v) = file.tls_reload_seconds {
            self.tls_reload_interval = Duration::from_secs(v.max(1));
        }
        if let Some(v) = file.provider_refresh_seconds {
            self.provider_refresh = Duration::from_secs(v.max(1));
        }
        Ok(())
    }

    /// Checks that need the whole configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for required in ["development", "production"] {
            if !self.environments.iter().any(|e| e.name == required) {
                return Err(ConfigError(format!(
                    "the {required} environment is required"
                )));
            }
        }
        let mut seen: Vec<SocketAddr> = Vec::new();
        let all = std::iter::once(("management".to_string(), self.management)).chain(
            self.environments.iter().flat_map(|e| {
                [
                    (format!("{} external", e.name), e.external),
                    (format!("{} internal", e.name), e.internal),
                ]
            }),
        );
        for (what, addr) in all {
            if addr.port() != 0 && seen.contains(&addr) {
                return Err(ConfigError(format!("{what} listener {addr} is used twice")));
            }
            seen.push(addr);
        }
        if self.import.limits.max_bytes == 0 {
            return Err(ConfigError("import.max_bytes must be above 0".into()));
        }
        if self.gateway.read_buffer_bytes < 1024 {
            return Err(ConfigError(
                "gateway.read_buffer_bytes must be at least 1024".into(),
            ));
        }
        if self.gateway.request_head_timeout.is_zero() {
            return Err(ConfigError(
                "gateway.request_head_timeout_seconds must be above 0".into(),
            ));
        }
        if self.gateway.max_pending_handshakes == 0
            || self.gateway.max_pending_handshakes_per_address == 0
        {
            return Err(ConfigError(
                "gateway.max_pending_handshakes and gateway.max_pending_handshakes_per_address must be above 0".into(),
            ));
        }
        if self.gateway.connect_timeout.is_zero() {
            return Err(ConfigError(
                "gateway.connect_timeout_ms must be above 0".into(),
            ));
        }
        if asyncgate_contract::slugify(&self.default_project) != self.default_project {
            return Err(ConfigError(format!(
                "project `{}` must be lower-case letters, digits and dashes",
                self.default_project
            )));
        }
        Ok(())
    }
}

/// The store's location from `text` (`what` names the setting in the message).
pub fn parse_store(text: &str, what: &str) -> Result<asyncgate_store::StoreLocation, ConfigError> {
    text.parse()
        .map_err(|e: asyncgate_store::LocationError| ConfigError(format!("{what}: {e}")))
}

pub fn parse_addr(text: &str, what: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError(format!(
            "{what}: `{text}` is not an address such as 127.0.0.1:9400"
        ))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    store: Option<String>,
    redis: Option<String>,
    project: Option<String>,
    listen: Option<ListenFile>,
    import: Option<ImportFile>,
    gateway: Option<GatewayFile>,
    metrics: Option<MetricsFile>,
    test_token_ttl_seconds: Option<u64>,
    session_ttl_seconds: Option<u64>,
    access_token_ttl_seconds: Option<u64>,
    signing_key_rotation_days: Option<u64>,
    provider_refresh_seconds: Option<u64>,
    tls_reload_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenFile {
    management: Option<ListenerFile>,
    environments: Option<Vec<EnvironmentFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvironmentFile {
    name: String,
    external: Option<ListenerFile>,
    internal: Option<ListenerFile>,
}

/// A listener in the file: an address (`0.0.0.0:443`), or a map with `address`, `tls`
/// and `public_url`.
#[derive(Debug)]
enum ListenerFile {
    Address(String),
    Full(ListenerMap),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerMap {
    address: Option<String>,
    tls: Option<TlsFile>,
    public_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for ListenerFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ListenerFile, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ListenerFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an address such as 0.0.0.0:443, or a map with address, tls and public_url",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListenerFile, E> {
                Ok(ListenerFile::Address(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ListenerFile, A::Error> {
                ListenerMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ListenerFile::Full)
            }
        }
        d.deserialize_any(Visit)
    }
}

impl ListenerFile {
    /// Apply this listener's settings (named `what` in errors); its public URL must use
    /// one of `schemes`.
    fn apply(
        self,
        what: &str,
        schemes: &[&str],
        address: &mut SocketAddr,
        options: &mut ListenerOptions,
    ) -> Result<(), ConfigError> {
        let map = match self {
            ListenerFile::Address(a) => {
                *address = parse_addr(&a, what)?;
                return Ok(());
            }
            ListenerFile::Full(map) => map,
        };
        if let Some(a) = map.address {
            *address = parse_addr(&a, &format!("{what}.address"))?;
        }
        if let Some(tls) = map.tls {
            options.tls = Some(asyncgate_gateway::tls::TlsFiles {
                cert_file: tls.cert_file,
                key_file: tls.key_file,
                client_ca_file: tls.client_ca_file,
            });
        }
        if let Some(u) = map.public_url {
            options.public_url = Some(public_url(&u, &format!("{what}.public_url"), schemes)?);
        }
        Ok(())
    }
}

/// A listener's public URL, checked: one of `schemes`, a host, no query or fragment;
/// returned without a trailing slash.
fn public_url(text: &str, what: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let url = url::Url::parse(text)
        .map_err(|e| ConfigError(format!("{what}: `{text}` is not a URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError(format!(
            "{what}: `{text}` must start with {}",
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError(format!(
            "{what}: `{text}` must name a host, with no query or fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    allow_private_addresses: Option<bool>,
    allow_absolute_references: Option<bool>,
    max_bytes: Option<usize>,
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayFile {
    connect_timeout_ms: Option<u64>,
    undeploy_grace_seconds: Option<u64>,
    backend_ca_file: Option<PathBuf>,
    read_buffer_bytes: Option<usize>,
    workers: Option<usize>,
    drain_seconds: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    request_head_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
    max_pending_handshakes: Option<usize>,
    max_pending_handshakes_per_address: Option<usize>,
    access_log: Option<AccessLogFile>,
}

/// `gateway.access_log`: a line per connection, JSON (default) or text, to
/// `<data-dir>/access.log` by default or to a file (`-`: standard output).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessLogFile {
    format: Option<String>,
    file: Option<PathBuf>,
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    open_to: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_adds_environments() {
        let dir = std::env::temp_dir().join(format!("asyncgate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("asyncgate.yaml");
        std::fs::write(
            &path,
            "listen:\n  management: 127.0.0.1:7000\n  environments:\n    - name: production\n      external: 0.0.0.0:443\n    - name: staging\n      external: 127.0.0.1:7001\n      internal: 127.0.0.1:7002\nimport:\n  allow_private_addresses: true\ngateway:\n  workers: 3\n  read_buffer_bytes: 65536\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7]\n",
        )
        .unwrap();
        let mut c = ServeConfig::defaults(dir.clone());
        c.apply_file(&path).unwrap();
        c.validate().unwrap();
        assert_eq!(c.management.port(), 7000);
        assert_eq!(c.environments[1].external.port(), 443);
        assert_eq!(c.environments[2].name, "staging");
        let mut ordered = ServeConfig::defaults(PathBuf::from("d"));
        let file = dir.join("ordered.yaml");
        std::fs::write(
            &file,
            "listen:\n  environments:\n    - name: staging\n    - name: production\n",
        )
        .unwrap();
        ordered.apply_file(&file).unwrap();
        let names: Vec<&str> = ordered
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["development", "staging", "production"]);
        assert!(c.import.allow_private_addresses);
        assert_eq!(c.gateway.workers, 3);
        assert_eq!(c.gateway.read_buffer_bytes, 65536);
        assert!(c
            .gateway
            .trusted_proxies
            .contains("10.2.3.4".parse().unwrap()));
        assert!(!c
            .gateway
            .trusted_proxies
            .contains("192.0.2.8".parse().unwrap()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_listener_may_be_a_map_with_tls_and_a_public_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asyncgate.yaml");
        std::fs::write(
            &path,
            "listen:\n  management: {address: 127.0.0.1:7000, public_url: https://api.example.com/}\n  environments:\n    - name: production\n      external:\n        address: 0.0.0.0:443\n        tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem}\n        public_url: wss://chat.example.com\ngateway:\n  access_log: {format: text, file: '-'}\nmetrics:\n  open_to: [10.0.0.0/8]\ntls_reload_seconds: 2\n",
        )
        .unwrap();
        let mut c = ServeConfig::defaults(dir.path().to_path_buf());
        c.apply_file(&path).unwrap();
        assert_eq!(c.management.port(), 7000);
        assert_eq!(
            c.management_options.public_url.as_deref(),
            Some("https://api.example.com")
        );
        let prod = c
            .environments
            .iter()
            .find(|e| e.name == "production")
            .unwrap();
        assert_eq!(prod.external.port(), 443);
        let tls = prod.external_options.tls.as_ref().unwrap();
        assert_eq!(tls.client_ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(
            prod.external_options.url(prod.external, "ws", "wss"),
            "wss://chat.example.com"
        );
        let dev = &c.environments[0];
        assert_eq!(
            dev.external_options
                .url("0.0.0.0:9401".parse().unwrap(), "ws", "wss"),
            "ws://127.0.0.1:9401"
        );
        assert_eq!(
            c.gateway.access_log.format,
            asyncgate_gateway::access_log::Format::Text
        );
        assert_eq!(c.gateway.access_log.file, None, "`-` is standard output");
        assert!(c.metrics_open_to.contains("10.1.2.3".parse().unwrap()));
        assert_eq!(c.tls_reload_interval, Duration::from_secs(2));

        for (yaml, expected) in [
            ("listen: {management: {public_url: 'ws://x'}}\n", "must start with http:// or https://"),
            ("listen: {environments: [{name: development, external: {public_url: 'https://x'}}]}\n", "must start with ws:// or wss://"),
            ("listen: {management: {adress: 127.0.0.1:1}}\n", "adress"),
            ("listen: {management: {tls: {cert_file: /c.pem}}}\n", "key_file"),
            ("gateway: {access_log: {format: xml}}\n", "json or text"),
            ("metrics: {open_to: [everyone]}\n", "`everyone`"),
        ] {
            std::fs::write(&path, yaml).unwrap();
            let err = ServeConfig::defaults(dir.path().to_path_buf())
                .apply_file(&path)
                .unwrap_err()
                .0;
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }

    #[test]
    fn unknown_fields_and_clashing_ports_are_refused() {
        let dir = std::env::temp_dir().join(format!("asyncgate-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "listn: {}\n").unwrap();
        let mut c = ServeConfig::defaults(dir.clone());
        assert!(c.apply_file(&path).unwrap_err().0.contains("listn"));
        c.environments[0].external = c.management;
        assert!(c.validate().unwrap_err().0.contains("used twice"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
