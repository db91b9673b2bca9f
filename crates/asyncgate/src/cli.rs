//! Command-line interface: `serve`, `chat-backend`, `demo`, `connect`, and the `api`
//! commands, which are clients of the management REST API.

use crate::client::{segment, Client};
use crate::config::{parse_addr, ConfigError, ServeConfig, DEFAULT_DATA_DIR};
use crate::console::{self, ConsoleOptions};
use anyhow::{anyhow, Context};
use asyncgate_control::apis::{ImportRequest, LimitsPatch, SecurityPatch, UpdateRequest};
use asyncgate_control::keys::{TestToken, TestTokenRequest};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "asyncgate",
    version,
    about = "Self-hosted WebSocket API management: import AsyncAPI contracts, deploy, test, promote and publish WebSocket API proxies."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: management API, gateway environments and the embedded store.
    Serve(ServeArgs),
    /// Run the sample chat backend (the guide's chat service protocol).
    ChatBackend {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9410")]
        listen: String,
    },
    /// Serve a contract as a WebSocket backend: its channels' paths, replies to
    /// request/reply operations, and the server's messages on an interval.
    Mock {
        /// Contract file, or http(s) URL.
        contract: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9412")]
        listen: String,
        /// Seconds between rounds of the server's messages.
        #[arg(long, default_value_t = 5.0)]
        interval: f64,
        /// Allow fetching the contract from loopback and private addresses.
        #[arg(long)]
        allow_private: bool,
    },
    /// Run a plain WebSocket echo backend (messages and close codes sent back).
    EchoBackend {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9411")]
        listen: String,
    },
    /// Walk through the guide with the bundled sample: import, deploy, test, promote,
    /// publish; then keep the platform running with a ready credential.
    Demo(DemoArgs),
    /// Manage API proxies.
    Api {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: Box<ApiCommand>,
    },
    /// Work with AsyncAPI contracts locally.
    Contract {
        #[command(subcommand)]
        command: ContractCommand,
    },
    /// List environments and their listener URLs.
    Env {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Organizations: create and list.
    Org {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Members of an organization and their roles.
    User {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Sign in as a user; later commands use the session until `asyncgate logout`.
    Login {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// End the session of `asyncgate login`.
    Logout {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// The store itself: bring its schema up to date, export it, import it elsewhere
    /// (such as from SQLite to PostgreSQL).
    Store {
        #[command(flatten)]
        at: StoreArgs,
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Run a gateway node: serve one environment with the snapshots of a control plane,
    /// from a copy on disk while the control plane is away.
    Gateway(GatewayArgs),
    /// Gateway nodes' tokens (the operator's).
    Node {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Gateway nodes as the control planes last heard from them: version, last contact.
    Nodes {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Who the CLI acts as, and in which organizations.
    Whoami {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Personal access tokens, for automation.
    Token {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Applications: OAuth2 clients, their subscriptions and API keys.
    App {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Subscription plans of the organization.
    Plan {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// External identity providers whose tokens the organization's APIs accept.
    Idp {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: IdpCommand,
    },
    /// The platform's token signing keys (admin token only).
    SigningKey {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: SigningKeyCommand,
    },
    /// The organization's audit log: who did what, when, from where.
    Audit {
        #[command(flatten)]
        conn: ConnArgs,
        /// Only entries about this API (id or identifier).
        #[arg(long)]
        api: Option<String>,
        /// Only entries by this user (email, or `operator`).
        #[arg(long)]
        user: Option<String>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u32>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// A terminal WebSocket client: send input lines, print what arrives.
    Connect {
        /// ws:// or wss:// URL.
        url: String,
        /// API key, sent in the `api-key` header.
        #[arg(long)]
        api_key: Option<String>,
        /// Bearer token, sent in the `Authorization` header.
        #[arg(long)]
        token: Option<String>,
        #[command(flatten)]
        console: ConsoleArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization (with its default project and plans).
    Create {
        /// A unique name, for example "Stark Industries".
        name: String,
        /// URL-safe handle (default: derived from the name).
        #[arg(long)]
        handle: Option<String>,
        /// First admin's email (admin token only; a signed-in user becomes the admin).
        #[arg(long, requires = "admin_password_stdin")]
        admin_email: Option<String>,
        /// Read the first admin's password from standard input.
        #[arg(long, requires = "admin_email")]
        admin_password_stdin: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Organizations you are a member of (all of them, for the admin token).
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show the organization's settings (--org), or change those given.
    Settings {
        /// Let consumers sign up as subscribers in the developer portal: on or off.
        #[arg(long, value_parser = clap::builder::BoolishValueParser::new())]
        subscriber_signup: Option<bool>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to the organization (--org) with a role; a new user needs a password.
    Add {
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: asyncgate_core::Role,
        /// Read the new user's password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Members of the organization and their roles.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Give a member another role.
    Role {
        email: String,
        #[arg(value_parser = parse_role)]
        role: asyncgate_core::Role,
    },
    /// Block a user: no sign-in, tokens refused, their applications' connections closed.
    Block { email: String },
    /// Unblock a user.
    Unblock { email: String },
    /// Remove a member from the organization.
    Remove { email: String },
}

fn parse_role(s: &str) -> Result<asyncgate_core::Role, String> {
    s.parse()
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: sqlite:PATH or postgres://user:password@host:port/database (default:
    /// asyncgate.db in the data folder).
    #[arg(long, env = "ASYNCGATE_STORE", hide_env_values = true, global = true)]
    pub store: Option<String>,
    /// The platform's data folder, whose SQLite store is used without --store.
    #[arg(long, env = "ASYNCGATE_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
}

impl StoreArgs {
    pub fn location(&self) -> Result<asyncgate_store::StoreLocation, ConfigError> {
        match &self.store {
            Some(s) => crate::config::parse_store(s, "--store"),
            None => Ok(asyncgate_store::StoreLocation::Sqlite(
                self.data_dir.join(crate::platform::SQLITE_FILE),
            )),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Bring the store's schema up to date (every start does it too); prints its version.
    Migrate,
    /// Write every record (APIs, revisions, deployments, keys, applications,
    /// subscriptions, users, audit history...) as one JSON document.
    Export {
        /// File to write (default: standard output). It holds hashes and signing keys:
        /// keep it as private as the store.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Read an export into a new, empty store (one transaction: all or nothing).
    Import {
        /// The export (`-`: standard input).
        input: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Tokens gateway nodes authenticate with.
    Token {
        #[command(subcommand)]
        command: NodeTokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeTokenCommand {
    /// Create a node token for one environment (shown once).
    Create {
        /// The environment nodes with this token serve.
        #[arg(long, default_value = "production")]
        environment: String,
        /// A name to recognise it by.
        #[arg(long)]
        name: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Node tokens (never the tokens themselves).
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Revoke a node token by id: nodes using it are refused at their next call.
    Revoke { id: String },
}

#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The control plane's management URL.
    #[arg(long, env = "ASYNCGATE_CONTROL")]
    pub control: String,
    /// The environment this node serves.
    #[arg(long, default_value = "production")]
    pub environment: String,
    /// The node token (`asyncgate node token create`).
    #[arg(long, env = "ASYNCGATE_NODE_TOKEN", hide_env_values = true)]
    pub node_token: String,
    /// YAML configuration file, as `serve` reads it: the `gateway:` settings, and the
    /// environment's listeners under `listen.environments` (addresses, TLS, public URLs).
    #[arg(long, env = "ASYNCGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The environment's external (public) listener (default: from the file, else as
    /// `serve` binds it: production 127.0.0.1:9403).
    #[arg(long)]
    pub listen_external: Option<String>,
    /// The environment's internal listener (default: from the file, else production
    /// 127.0.0.1:9404).
    #[arg(long)]
    pub listen_internal: Option<String>,
    /// `/healthz`, `/readyz` (for the load balancer), `/metrics`, and the control planes'
    /// connection commands.
    #[arg(long, default_value = "127.0.0.1:9405")]
    pub listen_status: String,
    /// Folder for the node's id, its copy of the snapshot and node.json.
    #[arg(long, env = "ASYNCGATE_DATA_DIR", default_value = "asyncgate-node")]
    pub data_dir: PathBuf,
    /// Seconds live connections get to close on SIGTERM (default: the file's
    /// `gateway.drain_seconds`, else 10).
    #[arg(long)]
    pub drain_seconds: Option<u64>,
    /// Redis for connection limits and plan rates held across the nodes (without it,
    /// per node).
    #[arg(long, env = "ASYNCGATE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
}

impl GatewayArgs {
    pub fn to_config(&self) -> Result<crate::node::NodeConfig, ConfigError> {
        let control = url::Url::parse(self.control.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                ConfigError(format!(
                    "--control: `{}` is not the control plane's http(s) management URL",
                    self.control
                ))
            })?;
        if !self
            .node_token
            .starts_with(asyncgate_control::nodes::NODE_TOKEN_PREFIX)
        {
            return Err(ConfigError(
                "--node-token: a node token starts with agn_ (asyncgate node token create)".into(),
            ));
        }
        // The same file `serve` reads, for the gateway's settings and this environment's
        // listeners; flags override it.
        let mut base = ServeConfig::defaults(self.data_dir.clone());
        if let Some(path) = &self.config {
            base.apply_file(path)?;
        }
        let redis = self.redis.clone().or(base.redis.clone());
        let drain = self
            .drain_seconds
            .map_or(base.drain, std::time::Duration::from_secs);
        let (tls_reload, gateway) = (base.tls_reload_interval, base.gateway.clone());
        let mut env = base.environment_mut(&self.environment).clone();
        if let Some(a) = &self.listen_external {
            env.external = parse_addr(a, "--listen-external")?;
        }
        if let Some(a) = &self.listen_internal {
            env.internal = parse_addr(a, "--listen-internal")?;
        }
        Ok(crate::node::NodeConfig {
            control,
            token: self.node_token.clone(),
            listen: env,
            listen_status: parse_addr(&self.listen_status, "--listen-status")?,
            data_dir: self.data_dir.clone(),
            drain,
            tls_reload,
            gateway,
            redis,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token (shown once).
    Create {
        name: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Your personal access tokens (never the tokens themselves).
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Revoke a personal access token by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an application; prints its client id and secret (shown once).
    Create {
        name: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Your applications (every one of the organization's, for an admin).
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// An application with its subscriptions and keys.
    Show {
        app: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Subscribe an application to a published API on a plan.
    Subscribe {
        app: String,
        api: String,
        #[arg(long, default_value = "Unlimited")]
        plan: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// End a subscription (live connections using it close).
    Unsubscribe { app: String, api: String },
    /// Make a new client secret (the old one stops working; shown once).
    Secret {
        app: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Block an application: its credentials are refused, its connections closed.
    Block { app: String },
    /// Unblock an application.
    Unblock { app: String },
    /// Delete an application with its subscriptions and keys.
    Delete { app: String },
    /// An application's API keys.
    Key {
        #[command(subcommand)]
        command: AppKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppKeyCommand {
    /// Create an API key for one environment (shown once).
    Create {
        app: String,
        #[arg(long = "env")]
        environment: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The application's keys, by their first characters.
    List {
        app: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Revoke a key (live connections using it close).
    Revoke { app: String, key_id: String },
    /// Revoke a key and make a new one for the same environment (shown once).
    Regenerate {
        app: String,
        key_id: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// The organization's plans and their limits.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Create a plan (0 = no limit).
    Create {
        name: String,
        #[arg(long, default_value_t = 0)]
        max_connections: u64,
        #[arg(long, default_value_t = 0)]
        messages_per_minute: u64,
        #[arg(long, default_value_t = 0)]
        bytes_per_minute: u64,
        /// `close` the connection (1008) or `drop` the message, when over a rate.
        #[arg(long, default_value = "close", value_parser = parse_excess)]
        on_excess: asyncgate_core::OnExcess,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

fn parse_excess(s: &str) -> Result<asyncgate_core::OnExcess, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Trust a provider: its JWKS is fetched now (public addresses only unless allowed).
    Add {
        name: String,
        /// `iss` of its tokens.
        #[arg(long)]
        issuer: String,
        /// http(s) URL of its JWKS.
        #[arg(long)]
        jwks_url: String,
        /// `aud` its tokens must carry.
        #[arg(long)]
        audience: String,
        /// Claim naming the application (its client id or name).
        #[arg(long, default_value = "client_id")]
        application_claim: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The organization's providers and the key ids last fetched.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Stop trusting a provider.
    Remove { provider: String },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Replace the current signing key; tokens it signed stay valid until they expire.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Check a contract (file or http(s) URL) without creating anything; print what an
    /// import would derive and every diagnostic. Exits 1 when it is invalid.
    Validate {
        /// Contract file, or http(s) URL.
        source: String,
        /// Allow fetching from loopback and private addresses.
        #[arg(long)]
        allow_private: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// YAML configuration file (flags override it).
    #[arg(long, env = "ASYNCGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Folder for the store, the admin token and endpoints.json.
    #[arg(long, env = "ASYNCGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: sqlite:PATH (default: asyncgate.db in the data folder) or
    /// postgres://user:password@host:port/database, shared by several control planes.
    #[arg(long, env = "ASYNCGATE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Redis for connection limits held across every gateway sharing it (without it,
    /// per process).
    #[arg(long, env = "ASYNCGATE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// Management API address.
    #[arg(long)]
    pub listen_management: Option<String>,
    /// Development environment, external (public) listener.
    #[arg(long)]
    pub listen_dev_external: Option<String>,
    /// Development environment, internal listener.
    #[arg(long)]
    pub listen_dev_internal: Option<String>,
    /// Production environment, external (public) listener.
    #[arg(long)]
    pub listen_prod_external: Option<String>,
    /// Production environment, internal listener.
    #[arg(long)]
    pub listen_prod_internal: Option<String>,
    /// Bind every listener on 127.0.0.1 port 0 (ports are in endpoints.json).
    #[arg(long)]
    pub ephemeral_ports: bool,
    /// Allow contract imports from loopback and private addresses.
    #[arg(long)]
    pub allow_private_imports: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Address of the in-process chat backend.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub chat_listen: String,
    /// Stop after the walkthrough instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Data folder of the platform to talk to (for endpoints.json and the admin token).
    #[arg(long, env = "ASYNCGATE_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// Management API URL (default: from endpoints.json).
    #[arg(long, env = "ASYNCGATE_SERVER", global = true)]
    pub server: Option<String>,
    /// Token: a personal access token, or the admin token (default: the session of
    /// `asyncgate login`, else <data-dir>/admin-token).
    #[arg(long, env = "ASYNCGATE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Organization to act in (handle or id; default: your only one, or for the admin
    /// token the default organization).
    #[arg(long, env = "ASYNCGATE_ORG", global = true)]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// After the end of input, wait this many seconds of quiet before closing.
    #[arg(long, default_value_t = 1.0)]
    pub linger: f64,
    /// Print one JSON object per event.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Args)]
pub struct Overrides {
    /// API name (default: the contract's info.title).
    #[arg(long)]
    pub name: Option<String>,
    /// URL-safe identifier (default: derived from the name).
    #[arg(long)]
    pub identifier: Option<String>,
    /// API version (default: the contract's info.version).
    #[arg(long)]
    pub version: Option<String>,
    /// Gateway path prefix (default: /<project>/<identifier>/v<version>).
    #[arg(long)]
    pub base_path: Option<String>,
    /// Backend URL, ws:// or wss:// (default: the contract's first ws/wss server).
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
}

/// Per-API bounds the gateway enforces (see docs/gateway.md).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest message or frame from either side.
    #[arg(long)]
    pub max_message_bytes: Option<u64>,
    /// Seconds a side may be silent before the gateway pings it.
    #[arg(long)]
    pub idle_timeout: Option<u64>,
    /// Seconds a pinged side may stay silent before both sides are closed.
    #[arg(long)]
    pub pong_timeout: Option<u64>,
    /// Longest a connection may last, in seconds (0 = no limit).
    #[arg(long)]
    pub max_connection_seconds: Option<u64>,
    /// Concurrent connections per environment (0 = no limit).
    #[arg(long)]
    pub max_connections: Option<u64>,
    /// Concurrent connections per credential (0 = no limit).
    #[arg(long)]
    pub max_connections_per_credential: Option<u64>,
    /// Close a bearer-token connection when its token expires (true or false).
    #[arg(long)]
    pub close_on_credential_expiry: Option<bool>,
    /// Messages per second on one connection, both directions counted (0 = no limit).
    #[arg(long)]
    pub max_messages_per_second: Option<u64>,
    /// Payload bytes per second on one connection, both directions counted (0 = no limit).
    #[arg(long)]
    pub max_bytes_per_second: Option<u64>,
    /// What happens to a message over those rates: close (1008) or drop.
    #[arg(long, value_parser = |s: &str| s.parse::<asyncgate_core::OnExcess>())]
    pub rate_limit_action: Option<asyncgate_core::OnExcess>,
    /// Extra header sent to the backend, NAME=VALUE (repeatable; replaces the set).
    #[arg(long = "backend-header", value_name = "NAME=VALUE")]
    pub backend_headers: Vec<String>,
    /// Remove every extra backend header.
    #[arg(long, conflicts_with = "backend_headers")]
    pub clear_backend_headers: bool,
}

/// Who may connect to an API (see docs/gateway.md).
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// Require a credential (`on`, the default) or let anyone connect (`off`).
    #[arg(long, value_parser = parse_on_off)]
    pub security: Option<bool>,
    /// Header that carries an API key (default `api-key`).
    #[arg(long)]
    pub api_key_header: Option<String>,
    /// Origin browsers may connect from, https://host[:port] (repeatable; replaces the list).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Let browsers of any origin connect again.
    #[arg(long, conflicts_with = "allowed_origins")]
    pub clear_allowed_origins: bool,
    /// Send the backend a signed X-JWT-Assertion naming the caller (`on`/`off`).
    #[arg(long, value_parser = parse_on_off)]
    pub backend_jwt: Option<bool>,
    /// Scope bearer tokens must carry (repeatable; replaces the list).
    #[arg(long = "required-scope", value_name = "SCOPE")]
    pub required_scopes: Vec<String>,
    /// Require no scopes again.
    #[arg(long, conflicts_with = "required_scopes")]
    pub clear_required_scopes: bool,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(format!("`{other}`: use on or off")),
    }
}

impl SecurityArgs {
    /// The change asked for, as the server's type, if any.
    fn patch(&self) -> Option<SecurityPatch> {
        let origins = if self.clear_allowed_origins {
            Some(Vec::new())
        } else {
            (!self.allowed_origins.is_empty()).then(|| self.allowed_origins.clone())
        };
        let patch = SecurityPatch {
            enabled: self.security,
            api_key_header: self.api_key_header.clone(),
            allowed_origins: origins,
            backend_jwt: self.backend_jwt,
            required_scopes: if self.clear_required_scopes {
                Some(Vec::new())
            } else {
                (!self.required_scopes.is_empty()).then(|| self.required_scopes.clone())
            },
        };
        let empty = patch.enabled.is_none()
            && patch.api_key_header.is_none()
            && patch.allowed_origins.is_none()
            && patch.backend_jwt.is_none()
            && patch.required_scopes.is_none();
        (!empty).then_some(patch)
    }
}

impl LimitArgs {
    /// The limits to change, as the server's type.
    pub(crate) fn patch(&self) -> Option<LimitsPatch> {
        let patch = LimitsPatch {
            max_message_bytes: self.max_message_bytes,
            idle_timeout_seconds: self.idle_timeout,
            pong_timeout_seconds: self.pong_timeout,
            max_connection_seconds: self.max_connection_seconds,
            max_connections: self.max_connections,
            max_connections_per_credential: self.max_connections_per_credential,
            close_on_credential_expiry: self.close_on_credential_expiry,
            max_messages_per_second: self.max_messages_per_second,
            max_bytes_per_second: self.max_bytes_per_second,
            rate_limit_action: self.rate_limit_action,
        };
        (!patch.is_empty()).then_some(patch)
    }

    /// The backend headers to set, if any change was asked for.
    pub(crate) fn backend_headers(&self) -> anyhow::Result<Option<BTreeMap<String, String>>> {
        if self.clear_backend_headers {
            return Ok(Some(BTreeMap::new()));
        }
        if self.backend_headers.is_empty() {
            return Ok(None);
        }
        self.backend_headers
            .iter()
            .map(|h| {
                h.split_once('=')
                    .map(|(name, value)| (name.trim().to_string(), value.to_string()))
                    .ok_or_else(|| anyhow!("--backend-header takes NAME=VALUE, got `{h}`"))
            })
            .collect::<anyhow::Result<_>>()
            .map(Some)
    }
}

impl Overrides {
    /// An import request carrying these overrides.
    pub fn import_request(&self) -> ImportRequest {
        ImportRequest {
            name: self.name.clone(),
            identifier: self.identifier.clone(),
            version: self.version.clone(),
            base_path: self.base_path.clone(),
            target: self.target.clone(),
            description: self.description.clone(),
            ..ImportRequest::default()
        }
    }

    /// An update request carrying these overrides, `limits` and `security`.
    pub fn update_request(
        &self,
        limits: &LimitArgs,
        security: &SecurityArgs,
        policies: &PolicyArgs,
    ) -> anyhow::Result<UpdateRequest> {
        let i = self.import_request();
        Ok(UpdateRequest {
            name: i.name,
            identifier: i.identifier,
            version: i.version,
            base_path: i.base_path,
            target: i.target,
            description: i.description,
            limits: limits.patch(),
            backend_headers: limits.backend_headers()?,
            security: security.patch(),
            message_validation: policies.message_validation,
            unjudged_messages: policies.unjudged_messages,
            compression: policies.compression,
        })
    }
}

/// What the contract governs on messages (see docs/policies.md).
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Validate messages against the contract: off, report, drop or reject.
    #[arg(long, value_parser = |s: &str| s.parse::<asyncgate_core::MessageValidation>())]
    pub message_validation: Option<asyncgate_core::MessageValidation>,
    /// Binary messages and text that is not JSON, when validating: pass or fail.
    #[arg(long, value_parser = |s: &str| s.parse::<asyncgate_core::Unjudged>())]
    pub unjudged_messages: Option<asyncgate_core::Unjudged>,
    /// How permessage-deflate crosses the gateway: auto, pass-through, terminate or off
    /// (see docs/gateway.md).
    #[arg(long, value_parser = |s: &str| s.parse::<asyncgate_core::Compression>())]
    pub compression: Option<asyncgate_core::Compression>,
}

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Create an API proxy from an AsyncAPI contract.
    Import {
        /// http(s) URL of the contract.
        #[arg(long, conflicts_with_all = ["file", "dir"], required_unless_present_any = ["file", "dir"])]
        url: Option<String>,
        /// Contract file (YAML or JSON).
        #[arg(long, conflicts_with = "dir")]
        file: Option<PathBuf>,
        /// A folder of contract files that `$ref` each other (sent as a bundle).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Root document within --dir (default asyncapi.yaml/.yml/.json).
        #[arg(long, requires = "dir")]
        root: Option<String>,
        /// Project (default: the platform's default project).
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        overrides: Overrides,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Import a new version of an API's contract: prints what changed (breaking changes
    /// flagged); the change goes live with the next deploy.
    Reimport {
        api: String,
        /// http(s) URL of the contract.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        url: Option<String>,
        /// Contract file (YAML or JSON).
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print an API's contract: as imported, or (--consumer) as the developer portal serves
    /// it, with the gateway URLs as servers.
    Export {
        api: String,
        #[arg(long)]
        consumer: bool,
        /// yaml or json (consumer contract only; the imported one is printed as it came).
        #[arg(long, default_value = "yaml")]
        format: String,
    },
    /// List API proxies.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show an API proxy with its deployments and their URLs.
    Show {
        api: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Edit the values of an API proxy (takes effect on the next deploy).
    Update {
        api: String,
        #[command(flatten)]
        overrides: Overrides,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        security: SecurityArgs,
        #[command(flatten)]
        policies: PolicyArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete an API proxy and everything deployed from it.
    Delete { api: String },
    /// Deploy the current design (or, with --revision, an earlier revision: a rollback)
    /// to an environment, with that environment's own values if given.
    Deploy {
        api: String,
        #[arg(long = "env")]
        env: String,
        /// external: public and internal listeners; internal: internal listener only.
        #[arg(long, default_value = "external")]
        access: String,
        /// Deploy this revision instead of the current design.
        #[arg(long)]
        revision: Option<u32>,
        #[command(flatten)]
        values: EnvironmentValueArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Stop serving an API in an environment (live connections close with 1001).
    Undeploy {
        api: String,
        #[arg(long = "env")]
        env: String,
    },
    /// Deploy the revision running in one environment to the next one in order. The
    /// target environment keeps its own values, or takes the source's when it has none.
    Promote {
        api: String,
        #[arg(long, default_value = "development")]
        from: String,
        #[arg(long, default_value = "production")]
        to: String,
        /// Access mode in the target environment (default: as in the source).
        #[arg(long)]
        access: Option<String>,
        #[command(flatten)]
        values: EnvironmentValueArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List the revisions deploying made.
    Revisions {
        api: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// What each environment served when, who changed it, and what changed.
    History {
        api: String,
        #[arg(long = "env")]
        env: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// What changed between two revisions: contract and values.
    Diff {
        api: String,
        #[arg(long)]
        from: u32,
        #[arg(long)]
        to: u32,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Live connections: `connections API` lists them (with what they carried so far),
    /// `connections close API ID` closes one, `connections send API ID --text T` sends
    /// its client a message.
    Connections {
        /// API (to list), or `close` / `send` followed by API and connection id.
        #[arg(num_args = 1..=3, required = true)]
        words: Vec<String>,
        /// Only this environment's connections (listing).
        #[arg(long)]
        env: Option<String>,
        /// Close code (close; default 1000).
        #[arg(long)]
        code: Option<u16>,
        /// Close reason (close).
        #[arg(long)]
        reason: Option<String>,
        /// A text message (send).
        #[arg(long, conflicts_with = "binary_file")]
        text: Option<String>,
        /// A file sent as one binary message (send).
        #[arg(long)]
        binary_file: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show the lifecycle state, or change it: publish, pre-release, demote-to-created,
    /// block, deprecate, retire; `history` lists the changes.
    Lifecycle {
        api: String,
        action: Option<String>,
        /// Name shown in the developer portal (with publish).
        #[arg(long)]
        display_name: Option<String>,
        /// Why, kept in the lifecycle history.
        #[arg(long)]
        note: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Versions of an API: each with its own base path, revisions and lifecycle.
    Version {
        #[command(subcommand)]
        command: VersionCommand,
    },
    /// API keys for calling the API through the gateway.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The test console: connect through the gateway with a short-lived test token, send
    /// each input line, print each received message.
    Test {
        api: String,
        #[arg(long = "env", default_value = "development")]
        env: String,
        /// Channel address (default: the first channel).
        #[arg(long)]
        channel: Option<String>,
        #[command(flatten)]
        console: ConsoleArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Copy an API to a new version (its design now, or an earlier revision's).
    Create {
        api: String,
        #[arg(long)]
        version: String,
        /// Copy this revision instead of the current design.
        #[arg(long)]
        from_revision: Option<u32>,
        /// Base path of the new version (default: the version replaced in the source's).
        #[arg(long)]
        base_path: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List the versions of an API.
    List {
        api: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Values one environment serves instead of the revision's (see docs/lifecycle.md).
#[derive(Debug, Clone, Args)]
pub struct EnvironmentValueArgs {
    /// Backend URL in this environment (ws:// or wss://).
    #[arg(long)]
    pub target: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Drop the environment's own values first and serve the revision's.
    #[arg(long)]
    pub reset_values: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; it is printed once.
    Create {
        api: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List an API's keys (without the secrets).
    List {
        api: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Revoke a key by id.
    Revoke { api: String, key_id: String },
}

impl ServeArgs {
    /// Defaults, then the config file, then flags.
    pub fn to_config(&self) -> Result<ServeConfig, ConfigError> {
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mut c = if self.ephemeral_ports {
            ServeConfig::ephemeral(data_dir)
        } else {
            ServeConfig::defaults(data_dir)
        };
        if let Some(path) = &self.config {
            c.apply_file(path)?;
            if let Some(d) = &self.data_dir {
                c.data_dir = d.clone();
            }
        }
        if let Some(store) = &self.store {
            c.store = Some(crate::config::parse_store(store, "--store")?);
        }
        if let Some(redis) = &self.redis {
            c.redis = Some(redis.clone());
        }
        if let Some(a) = &self.listen_management {
            c.management = parse_addr(a, "--listen-management")?;
        }
        let flags = [
            (
                &self.listen_dev_external,
                "development",
                true,
                "--listen-dev-external",
            ),
            (
                &self.listen_dev_internal,
                "development",
                false,
                "--listen-dev-internal",
            ),
            (
                &self.listen_prod_external,
                "production",
                true,
                "--listen-prod-external",
            ),
            (
                &self.listen_prod_internal,
                "production",
                false,
                "--listen-prod-internal",
            ),
        ];
        for (value, env, external, flag) in flags {
            if let Some(a) = value {
                let addr = parse_addr(a, flag)?;
                let e = c.environment_mut(env);
                if external {
                    e.external = addr;
                } else {
                    e.internal = addr;
                }
            }
        }
        if self.allow_private_imports {
            c.import.allow_private_addresses = true;
        }
        c.validate()?;
        Ok(c)
    }
}

/// The contract files (.yaml, .yml, .json) under `dir`, by path relative to it.
pub fn bundle_files(
    dir: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                let name = path
                    .strip_prefix(root)?
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(
                    name,
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                );
            }
            anyhow::ensure!(
                out.len() <= 64,
                "{} holds more than 64 contract files",
                root.display()
            );
        }
        Ok(())
    }
    let mut files = std::collections::BTreeMap::new();
    walk(dir, dir, &mut files)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no .yaml, .yml or .json file in {}",
        dir.display()
    );
    Ok(files)
}

/// A test token for `api` in `env`, and the URL of the channel to test.
pub async fn test_target(
    client: &Client,
    api: &str,
    env: &str,
    channel: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let t: TestToken = client
        .post_as(
            &format!("/apis/{}/test-token", segment(api)),
            &TestTokenRequest {
                environment: env.to_string(),
            },
        )
        .await?;
    let d = &t.deployment;
    let url = match channel {
        None => d.channels.first().map_or(&d.url, |c| &c.url).clone(),
        Some(address) => match d.channels.iter().find(|c| c.address == address) {
            Some(c) => c.url.clone(),
            // A concrete address for a parameterised channel: append to the base URL.
            None => format!("{}{}", d.url.trim_end_matches('/'), address),
        },
    };
    let token = t.token;
    Ok((url, token))
}

pub async fn run_console(options: &ConsoleOptions) -> anyhow::Result<()> {
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut stdout = tokio::io::stdout();
    console::run(options, stdin, &mut stdout).await?;
    Ok(())
}
