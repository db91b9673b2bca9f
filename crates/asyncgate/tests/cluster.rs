//! The cluster, process by process on 127.0.0.1: two control planes (`asyncgate serve`)
//! on one PostgreSQL, two gateway nodes (`asyncgate gateway`) for production, each
//! following a different control plane. Deploys, chat, control planes killed and
//! restarted, a node restarted from its copy, revocation on both nodes, PostgreSQL
//! restarted, draining on SIGTERM.

use asyncgate::client::Client;
use asyncgate_testkit::services::{Postgres, Redis};
use asyncgate_testkit::{eventually_async, eventually_some, Backend, WsClient};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_asyncgate");

/// A process of ours, killed when dropped; its output goes to `log`, shown if the test
/// fails.
struct Proc {
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(args: &[&str], log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .env("ASYNCGATE_LOG", "info,asyncgate=debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn asyncgate");
        Proc {
            child: Some(child),
            log,
        }
    }

    /// SIGKILL: the process gets no chance to say goodbye.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the process to exit; its exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_raw(c.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} ----\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// `file` once it exists, as JSON.
async fn read_when_written(file: &Path) -> anyhow::Result<Value> {
    eventually_async(&format!("{} to be written", file.display()), || async {
        std::fs::read_to_string(file).is_ok_and(|t| serde_json::from_str::<Value>(&t).is_ok())
    })
    .await?;
    Ok(serde_json::from_str(&std::fs::read_to_string(file)?)?)
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A control plane on the shared store, its management API on `port` (the same after a
/// restart, as behind a load balancer); its management URL.
async fn control_plane(
    dir: &Path,
    name: &str,
    store: &str,
    port: u16,
) -> anyhow::Result<(Proc, String)> {
    let data = dir.join(name);
    let _ = std::fs::remove_file(data.join("endpoints.json"));
    let management = format!("127.0.0.1:{port}");
    let p = Proc::spawn(
        &[
            "serve",
            "--ephemeral-ports",
            "--listen-management",
            &management,
            "--data-dir",
            data.to_str().unwrap(),
            "--store",
            store,
        ],
        dir.join(format!("{name}.log")),
    );
    let endpoints = read_when_written(&data.join("endpoints.json")).await?;
    Ok((p, endpoints["management"].as_str().unwrap().to_string()))
}

/// A gateway node for production following `control`; its external listener's URL.
async fn node(
    dir: &Path,
    name: &str,
    control: &str,
    token: &str,
) -> anyhow::Result<(Proc, String)> {
    let (p, endpoints) = node_with(dir, name, control, token, &[]).await?;
    Ok((p, endpoints["external"].as_str().unwrap().to_string()))
}

/// A gateway node for production following `control`, with `extra` arguments; what its
/// node.json says.
async fn node_with(
    dir: &Path,
    name: &str,
    control: &str,
    token: &str,
    extra: &[&str],
) -> anyhow::Result<(Proc, Value)> {
    let data = dir.join(name);
    let _ = std::fs::remove_file(data.join("node.json"));
    let mut args = vec![
        "gateway",
        "--control",
        control,
        "--environment",
        "production",
        "--node-token",
        token,
        "--listen-external",
        "127.0.0.1:0",
        "--listen-internal",
        "127.0.0.1:0",
        "--listen-status",
        "127.0.0.1:0",
        "--drain-seconds",
        "5",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args, dir.join(format!("{name}.log")));
    Ok((p, read_when_written(&data.join("node.json")).await?))
}

/// Wait until a client with `key` is let in through `url`; that client.
async fn served(url: &str, key: &str) -> anyhow::Result<WsClient> {
    eventually_some(&format!("{url} to let the key in"), || async {
        WsClient::with_key(url, key).await.ok()
    })
    .await
}

/// Join the chat as `user`; the answer the joining client gets.
async fn join(c: &mut WsClient, user: &str) -> anyhow::Result<Value> {
    c.send_text(&json!({"type": "Connect", "username": user}).to_string())
        .await?;
    c.recv_json().await
}

/// Through `c`: import the sample chat API pointed at `target`, apply `limits` (when
/// given), deploy it to development, promote it to production and make an API key; the
/// key's id and the key.
async fn chat_in_production(
    c: &Client,
    target: &str,
    limits: Option<Value>,
) -> anyhow::Result<(String, String)> {
    c.post(
        "/apis/import",
        &json!({"contract": asyncgate_testkit::SAMPLE_CONTRACT, "target": target}),
    )
    .await?;
    if let Some(limits) = limits {
        c.patch("/apis/chat-api", &json!({ "limits": limits }))
            .await?;
    }
    c.post(
        "/apis/chat-api/deployments",
        &json!({"environment": "development", "accessMode": "external"}),
    )
    .await?;
    c.post(
        "/apis/chat-api/promote",
        &json!({"from": "development", "to": "production"}),
    )
    .await?;
    let key = c.post("/apis/chat-api/keys", &json!({})).await?;
    Ok((
        key["id"].as_str().unwrap_or_default().to_string(),
        key["key"].as_str().unwrap_or_default().to_string(),
    ))
}

/// A new node token for production, through `c`.
async fn production_node_token(c: &Client) -> anyhow::Result<String> {
    let created = c
        .post("/nodes/tokens", &json!({"environment": "production"}))
        .await?;
    Ok(created["token"].as_str().unwrap_or_default().to_string())
}

/// Wait until every node the control plane at `client` knows serves its current version.
async fn nodes_up_to_date(client: &Client, count: usize) -> anyhow::Result<Vec<Value>> {
    eventually_async("both nodes to report the current version", || async {
        let Ok(nodes) = client.get("/nodes").await else {
            return false;
        };
        let nodes = nodes.as_array().cloned().unwrap_or_default();
        nodes.len() == count && nodes.iter().all(|n| n["upToDate"] == true)
    })
    .await?;
    Ok(client
        .get("/nodes")
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_control_planes_on_postgres_and_two_gateway_nodes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut pg = Postgres::start().await?;
    let store = pg.create_database().await?;
    let chat = Backend::chat().await?;

    // Two control planes on one PostgreSQL; the first made the admin token.
    let (port1, port2) = (free_port(), free_port());
    let (mut cp1, url1) = control_plane(dir.path(), "cp1", &store, port1).await?;
    let token = std::fs::read_to_string(dir.path().join("cp1/admin-token"))?;
    let (mut cp2, url2) = control_plane(dir.path(), "cp2", &store, port2).await?;
    let (c1, c2) = (
        Client::new(&url1, token.trim()),
        Client::new(&url2, token.trim()),
    );

    // A node token, and a node following each control plane.
    let node_token = production_node_token(&c1).await?;
    assert!(node_token.starts_with("agn_"));
    // A wrong token is refused before anything is served.
    let refused = reqwest::Client::new()
        .post(format!("{url1}/api/v1/nodes/sync?wait=0"))
        .bearer_auth("agn_wrong")
        .json(&json!({"id": "x", "environment": "production", "hostname": "h", "appliedVersion": 0, "connections": 0, "state": "serving"}))
        .send()
        .await?;
    assert_eq!(refused.status(), 401);
    let (mut n1, gw1) = node(dir.path(), "n1", &url1, &node_token).await?;
    let (mut n2, gw2) = node(dir.path(), "n2", &url2, &node_token).await?;

    // Import and deploy through the second control plane, promote to production, key.
    let (key_id, key) = chat_in_production(&c2, &chat.url, None).await?;
    let path = "/default/chat-api/v1.0.0";
    let nodes = nodes_up_to_date(&c1, 2).await?;
    assert!(nodes
        .iter()
        .all(|n| n["environment"] == "production" && n["state"] == "serving"));

    // Served by both nodes; a broadcast reaches clients on both.
    let mut alice = served(&format!("{gw1}{path}"), &key).await?;
    let mut bob = served(&format!("{gw2}{path}"), &key).await?;
    assert_eq!(join(&mut alice, "alice").await?["username"], "alice");
    assert_eq!(join(&mut bob, "bob").await?["username"], "bob");
    assert_eq!(
        alice.recv_json().await?["username"],
        "bob",
        "bob's join reached alice on the other node"
    );

    // The connections API reaches every node: a connection on the second node is listed,
    // sent a message and closed through the first control plane.
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let before = ids(&c1.get("/apis/chat-api/connections").await?);
    let mut zed = WsClient::with_key(&format!("{gw2}{path}"), &key).await?;
    let listed = c1.get("/apis/chat-api/connections").await?;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let nodes_listed: std::collections::BTreeSet<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(nodes_listed.len(), 2, "connections of both nodes: {listed}");
    let zed_id = ids(&listed)
        .into_iter()
        .find(|id| !before.contains(id))
        .unwrap();
    c1.post(
        &format!("/apis/chat-api/connections/{zed_id}/messages"),
        &json!({"text": "from the operator"}),
    )
    .await?;
    assert_eq!(zed.recv_text().await?, "from the operator");
    c1.delete(&format!(
        "/apis/chat-api/connections/{zed_id}?code=4000&reason=bye"
    ))
    .await?;
    assert_eq!(zed.recv_close().await?, (4000, "bye".to_string()));

    // The control planes die; both nodes keep serving live and new connections.
    cp1.kill();
    cp2.kill();
    let mut carol = WsClient::with_key(&format!("{gw1}{path}"), &key).await?;
    assert_eq!(join(&mut carol, "carol").await?["username"], "carol");
    for c in [&mut alice, &mut bob] {
        assert_eq!(c.recv_json().await?["username"], "carol");
    }

    // A node restarted while they are down serves from its copy. SIGTERM drains it:
    // its clients are told 1001.
    let status = n2.terminate();
    assert!(
        status.success(),
        "the node exits cleanly after draining: {status}"
    );
    assert_eq!(bob.recv_close().await?.0, 1001);
    let (n2_again, gw2) = node(dir.path(), "n2", &url2, &node_token).await?;
    n2 = n2_again;
    let mut dave = WsClient::with_key(&format!("{gw2}{path}"), &key).await?;
    assert_eq!(join(&mut dave, "dave").await?["username"], "dave");

    // The control planes return; once the nodes have caught up, a revocation closes the
    // key's connections on both nodes.
    let (cp1_again, _) = control_plane(dir.path(), "cp1", &store, port1).await?;
    cp1 = cp1_again;
    let (cp2_again, _) = control_plane(dir.path(), "cp2", &store, port2).await?;
    cp2 = cp2_again;
    let mut erin = served(&format!("{gw2}{path}"), &key).await?;
    nodes_up_to_date(&c2, 2).await?;
    let revoked_at = Instant::now();
    c2.delete(&format!("/apis/chat-api/keys/{key_id}")).await?;
    for (who, c) in [
        ("alice", &mut alice),
        ("carol", &mut carol),
        ("erin", &mut erin),
    ] {
        assert_eq!(c.recv_close().await?.0, 1008, "{who} closed as revoked");
    }
    println!(
        "revocation closed the key's connections on both nodes {:?} after the call",
        revoked_at.elapsed()
    );
    drop(dave);

    // PostgreSQL restarts; the control planes recover on their own: a new key made through
    // one reaches the node that follows the other (so its notifications came back too).
    pg.stop().await?;
    pg.start_again().await?;
    let key2 = eventually_key(&c2).await?;
    let mut frank = served(&format!("{gw1}{path}"), &key2).await?;
    assert_eq!(join(&mut frank, "frank").await?["username"], "frank");
    let mut grace = served(&format!("{gw2}{path}"), &key2).await?;
    assert_eq!(join(&mut grace, "grace").await?["username"], "grace");

    // The nodes as the operator sees them.
    let listed = Command::new(BIN)
        .args([
            "nodes",
            "-o",
            "json",
            "--server",
            &url1,
            "--token",
            token.trim(),
        ])
        .output()?;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout)?;
    assert_eq!(listed.len(), 2, "{listed:?}");
    n1.kill();
    n2.kill();
    drop((cp1, cp2));
    Ok(())
}

/// A new API key, once the control plane reaches its store again.
async fn eventually_key(c: &Client) -> anyhow::Result<String> {
    eventually_some("the control plane to reach PostgreSQL again", || async {
        let made = c.post("/apis/chat-api/keys", &json!({})).await.ok()?;
        made["key"].as_str().map(str::to_string)
    })
    .await
}

/// A gauge or counter of a node's `/metrics`.
async fn metric(status: &str, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{status}/metrics"))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {name} in the node's metrics"))
}

/// Wait until both nodes say whether Redis answers as `up`.
async fn redis_seen(statuses: &[&str], up: bool) -> anyhow::Result<()> {
    let want = if up { 1.0 } else { 0.0 };
    eventually_async(
        &format!("the nodes to see Redis {}", if up { "up" } else { "down" }),
        || async {
            let mut all = true;
            for s in statuses {
                all &= metric(s, "asyncgate_shared_counters_up").await.ok() == Some(want);
            }
            all
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_plan_rates_hold_across_nodes_with_redis_and_per_node_without(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut redis = Redis::start().await?;
    let chat = Backend::chat().await?;
    // One control plane on its own SQLite store is enough here.
    let (_cp, url) = control_plane_on_sqlite(dir.path()).await?;
    let token = std::fs::read_to_string(dir.path().join("cp/admin-token"))?;
    let c = Client::new(&url, token.trim());
    let node_token = production_node_token(&c).await?;
    let redis_url = redis.url();
    let with_redis = ["--redis", redis_url.as_str()];
    let (_n1, e1) = node_with(dir.path(), "n1", &url, &node_token, &with_redis).await?;
    let (_n2, e2) = node_with(dir.path(), "n2", &url, &node_token, &with_redis).await?;
    let (s1, s2) = (
        e1["status"].as_str().unwrap(),
        e2["status"].as_str().unwrap(),
    );
    let path = "/default/chat-api/v1.0.0";
    let (gw1, gw2) = (
        format!("{}{path}", e1["external"].as_str().unwrap()),
        format!("{}{path}", e2["external"].as_str().unwrap()),
    );

    let limits = json!({"maxConnections": 3});
    let (_, key) = chat_in_production(&c, &chat.url, Some(limits)).await?;
    nodes_up_to_date(&c, 2).await?;
    redis_seen(&[s1, s2], true).await?;

    // Three across both nodes, not three on each.
    let a = served(&gw1, &key).await?;
    let _b = WsClient::with_key(&gw1, &key).await?;
    let _c = WsClient::with_key(&gw2, &key).await?;
    for gw in [&gw1, &gw2] {
        let refused = WsClient::refused(gw, &[("api-key", &key)]).await?;
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert!(
            refused.body.contains("connection_limit"),
            "{}",
            refused.body
        );
    }
    // A place given back on one node is free on the other.
    a.close().await;
    let _d = served(&gw2, &key).await?;

    // Redis away: the nodes fall back to per-node limits, say so, and refuse nobody for it.
    redis.stop().await?;
    redis_seen(&[s1, s2], false).await?;
    let _e = WsClient::with_key(&gw2, &key).await?;
    assert!(metric(s2, "asyncgate_shared_counters_fallbacks_total").await? >= 1.0);
    let refused = WsClient::refused(&gw2, &[("api-key", &key)]).await?;
    assert_eq!(
        refused.status, 429,
        "three on this node is its own limit: {}",
        refused.body
    );

    // Redis back (empty): the nodes write their counts again, and the limit holds across
    // them once more (four are open, so none more is let in anywhere).
    redis.start_again().await?;
    redis_seen(&[s1, s2], true).await?;
    eventually_async("the counts to be written again", || async {
        WsClient::try_connect(&gw1, &[("api-key", &key)])
            .await
            .is_ok_and(|r| r.is_err())
    })
    .await?;
    drop((_b, _c, _d, _e));

    // A plan's message rate holds across the nodes: six a minute, all taken through the
    // first node, leave none for the second. (Rates are added up per minute: the
    // scenario starts in the first half of one, so that it ends in the same minute.)
    let plan = c
        .post(
            "/plans",
            &json!({"name": "Six", "messagesPerMinute": 6, "onExcess": "close"}),
        )
        .await?;
    c.post("/apis/chat-api/lifecycle", &json!({"action": "publish"}))
        .await?;
    let app = c.post("/applications", &json!({"name": "sixer"})).await?;
    let app_path = format!("/applications/{}", app["id"].as_str().unwrap());
    c.post(
        &format!("{app_path}/subscriptions"),
        &json!({"api": "chat-api", "plan": plan["name"]}),
    )
    .await?;
    let app_key = c
        .post(
            &format!("{app_path}/keys"),
            &json!({"environment": "production"}),
        )
        .await?["key"]
        .as_str()
        .unwrap()
        .to_string();
    nodes_up_to_date(&c, 2).await?;
    let second_of_minute = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 60
    };
    if second_of_minute() > 30 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second_of_minute())).await;
    }
    let mut first = served(&gw1, &app_key).await?;
    let mut second = served(&gw2, &app_key).await?;
    // Messages are metered both ways: three sent, each answered (the first joins the
    // chat; the backend answers the others with an error of its own), are six.
    for i in 0..3 {
        join(&mut first, &format!("user{i}")).await?;
    }
    eventually_async("the second node to see the plan's rate used up", || async {
        metric(s2, "asyncgate_shared_rates_over").await.ok() == Some(1.0)
    })
    .await?;
    second
        .send_text(&json!({"type": "Connect", "username": "one-too-many"}).to_string())
        .await?;
    let (code, reason) = second.recv_close().await?;
    assert_eq!(
        (code, reason.as_str()),
        (1008, "over the plan's message or byte rate")
    );
    drop(first);
    Ok(())
}

/// A control plane on SQLite in `dir/cp`; its management URL.
async fn control_plane_on_sqlite(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let data = dir.join("cp");
    let p = Proc::spawn(
        &[
            "serve",
            "--ephemeral-ports",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.join("cp.log"),
    );
    let endpoints = read_when_written(&data.join("endpoints.json")).await?;
    Ok((p, endpoints["management"].as_str().unwrap().to_string()))
}

/// `asyncgate store ...` with `args`; its standard output, or the failure's message.
fn store_cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new(BIN)
        .arg("store")
        .args(args)
        .env_remove("ASYNCGATE_STORE")
        .output()
        .expect("asyncgate store ran");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_platform_moves_to_postgres_with_everything_it_held() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pg = Postgres::start().await?;
    let chat = Backend::chat().await?;

    // A platform on SQLite with an API, two revisions, a key, an application subscribed
    // with its own key, and audit history.
    let (mut cp, url) = control_plane_on_sqlite(dir.path()).await?;
    let token = std::fs::read_to_string(dir.path().join("cp/admin-token"))?;
    let c = Client::new(&url, token.trim());
    c.post(
        "/apis/import",
        &json!({"contract": asyncgate_testkit::SAMPLE_CONTRACT, "target": chat.url}),
    )
    .await?;
    let deploy = json!({"environment": "development", "accessMode": "external"});
    c.post("/apis/chat-api/deployments", &deploy).await?;
    c.patch("/apis/chat-api", &json!({"description": "second"}))
        .await?;
    c.post("/apis/chat-api/deployments", &deploy).await?;
    let key = c.post("/apis/chat-api/keys", &json!({})).await?["key"]
        .as_str()
        .unwrap()
        .to_string();
    c.post("/apis/chat-api/lifecycle", &json!({"action": "publish"}))
        .await?;
    let app = c.post("/applications", &json!({"name": "mover"})).await?;
    let app_path = format!("/applications/{}", app["id"].as_str().unwrap());
    c.post(
        &format!("{app_path}/subscriptions"),
        &json!({"api": "chat-api", "plan": "Gold"}),
    )
    .await?;
    let app_key = c
        .post(
            &format!("{app_path}/keys"),
            &json!({"environment": "development"}),
        )
        .await?["key"]
        .as_str()
        .unwrap()
        .to_string();
    let before = |path: &'static str| {
        let c = &c;
        async move { c.get(path).await }
    };
    let (revisions, keys, apps, audit) = (
        before("/apis/chat-api/revisions").await?,
        before("/apis/chat-api/keys").await?,
        before("/applications").await?,
        before("/audit").await?,
    );
    cp.kill();

    // Export, then import into a new PostgreSQL database.
    let export = dir.path().join("export.json");
    let data = dir.path().join("cp");
    store_cli(&[
        "export",
        "--data-dir",
        data.to_str().unwrap(),
        "-o",
        export.to_str().unwrap(),
    ])
    .map_err(anyhow::Error::msg)?;
    let database = pg.create_database().await?;
    let imported = store_cli(&["import", "--store", &database, export.to_str().unwrap()])
        .map_err(anyhow::Error::msg)?;
    assert!(imported.contains("imported"), "{imported}");
    // A second import would overwrite what is there: refused, nothing changed.
    let again = store_cli(&["import", "--store", &database, export.to_str().unwrap()]).unwrap_err();
    assert!(again.contains("not empty"), "{again}");

    // The platform on PostgreSQL holds all of it, under the same admin token, and serves
    // the same keys.
    let (_cp2, url2) = control_plane(dir.path(), "moved", &database, free_port()).await?;
    let c2 = Client::new(&url2, token.trim());
    assert_eq!(c2.get("/apis/chat-api/revisions").await?, revisions);
    assert_eq!(c2.get("/apis/chat-api/keys").await?, keys);
    assert_eq!(c2.get("/applications").await?, apps);
    let audit_after = c2.get("/audit").await?;
    let entries = |v: &Value| v["entries"].as_array().or(v.as_array()).map_or(0, Vec::len);
    assert!(
        entries(&audit_after) >= entries(&audit) && entries(&audit) > 0,
        "{audit_after}"
    );
    let endpoints = read_when_written(&dir.path().join("moved/endpoints.json")).await?;
    let dev = format!(
        "{}/default/chat-api/v1.0.0",
        endpoints["environments"]["development"]["external"]
            .as_str()
            .unwrap()
    );
    let mut old_key = served(&dev, &key).await?;
    assert_eq!(join(&mut old_key, "kept").await?["username"], "kept");
    WsClient::with_key(&dev, &app_key).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_tls_and_gateway_settings_from_the_configuration_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let chat = Backend::chat().await?;
    let (_cp, url) = control_plane_on_sqlite(dir.path()).await?;
    let token = std::fs::read_to_string(dir.path().join("cp/admin-token"))?;
    let c = Client::new(&url, token.trim());
    let node_token = production_node_token(&c).await?;
    // The same file `serve` reads: wss:// on the external listener, an access log.
    let ca = asyncgate_testkit::TestCa::new("node test CA")?;
    let issued = ca.issue(&["127.0.0.1"], "node", false)?;
    std::fs::write(dir.path().join("node.pem"), &issued.cert_pem)?;
    std::fs::write(dir.path().join("node.key"), &issued.key_pem)?;
    let config = dir.path().join("node.yaml");
    std::fs::write(
        &config,
        format!(
            "listen:\n  environments:\n    - name: production\n      external:\n        address: 127.0.0.1:0\n        tls:\n          cert_file: {}\n          key_file: {}\n      internal: 127.0.0.1:0\ngateway:\n  access_log:\n    file: node-access.log\n",
            dir.path().join("node.pem").display(),
            dir.path().join("node.key").display()
        ),
    )?;
    let (mut n, endpoints) = node_with(
        dir.path(),
        "n1",
        &url,
        &node_token,
        &["--config", config.to_str().unwrap()],
    )
    .await?;
    // node_with passes --listen-external 127.0.0.1:0 too: the flag wins over the file's
    // address, the file's TLS stays.
    let external = endpoints["external"].as_str().unwrap();
    assert!(external.starts_with("wss://127.0.0.1:"), "{external}");

    let (_, key) = chat_in_production(&c, &chat.url, None).await?;
    nodes_up_to_date(&c, 1).await?;
    let url = format!("{external}/default/chat-api/v1.0.0");
    let mut client =
        WsClient::connect_tls(&url, &[("api-key", &key)], ca.client_config(None)?).await?;
    assert_eq!(join(&mut client, "secure").await?["username"], "secure");
    client.close().await;
    let log = dir.path().join("n1/node-access.log");
    eventually_async("the node's access log to name the connection", || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("chat-api"))
    })
    .await?;
    // Stopped, it tells the control plane it drains.
    assert!(n.terminate().success());
    let nodes = c.get("/nodes").await?;
    assert_eq!(nodes[0]["state"], "draining", "{nodes}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_snapshot_is_alive_but_not_ready() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // No control plane answers there, and the node has no copy yet.
    let nowhere = asyncgate_testkit::dead_port_url()
        .await?
        .replace("ws://", "http://");
    let (mut n, endpoints) = node_with(dir.path(), "n1", &nowhere, "agn_unknown", &[]).await?;
    let status = endpoints["status"].as_str().unwrap();
    let health = reqwest::get(format!("{status}/healthz")).await?;
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{status}/readyz")).await?;
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await?, "no snapshot yet\n");
    // It listens, and says there is no API there.
    let external = endpoints["external"].as_str().unwrap();
    let refused = WsClient::refused(&format!("{external}/default/chat-api/v1.0.0"), &[]).await?;
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(n.terminate().success());
    Ok(())
}
