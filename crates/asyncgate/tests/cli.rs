//! The guide from the command line: real `asyncgate serve` and `asyncgate chat-backend`
//! processes, driven by the CLI commands a user types.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_asyncgate");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/chat-service-asyncapi.yaml")
}

fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if args[0] != "connect" {
        cmd.arg("--data-dir").arg(data_dir);
    }
    let mut child = cmd
        .env_remove("ASYNCGATE_SERVER")
        .env_remove("ASYNCGATE_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asyncgate");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("asyncgate ran")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

/// A safety net for waits on a process, far above what they take on a slow machine.
const PATIENCE: Duration = Duration::from_secs(120);

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < PATIENCE,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `asyncgate api deploy chat-api --env development --access external -o json`.
fn deploy_to_development(data: &Path) -> Value {
    json(&cli(
        data,
        &[
            "api",
            "deploy",
            "chat-api",
            "--env",
            "development",
            "--access",
            "external",
            "-o",
            "json",
        ],
        None,
    ))
}

/// A `chat-backend` process on 127.0.0.1:0, and its URL.
fn chat_backend() -> (Proc, String) {
    let mut chat = Proc(
        Command::new(BIN)
            .args(["chat-backend", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(chat.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let chat_url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(chat_url.starts_with("ws://127.0.0.1:"), "{line}");
    (chat, chat_url)
}

#[test]
fn the_guide_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (chat, chat_url) = chat_backend();

    // What serve prints (terminal and log) is kept to check it at the end.
    let serve_log = dir.path().join("serve.log");
    let log = std::fs::File::create(&serve_log).unwrap();
    let serve = Proc(
        Command::new(BIN)
            .args(["serve", "--ephemeral-ports", "--data-dir"])
            .arg(&data)
            .env("ASYNCGATE_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for(&data.join("endpoints.json"));
    let endpoints: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("endpoints.json")).unwrap())
            .unwrap();
    for env in ["development", "production"] {
        for kind in ["external", "internal"] {
            assert!(endpoints["environments"][env][kind]
                .as_str()
                .unwrap()
                .starts_with("ws://127.0.0.1:"));
        }
    }
    assert!(endpoints["management"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));

    // A broken contract is refused with the reason, and nothing is created.
    let bad = dir.path().join("openapi.yaml");
    std::fs::write(
        &bad,
        "openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths: {}\n",
    )
    .unwrap();
    let out = cli(
        &data,
        &["api", "import", "--file", bad.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an AsyncAPI document"));

    // A folder whose files `$ref` each other is sent as a bundle.
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("common")).unwrap();
    std::fs::write(
        bundle.join("asyncapi.yaml"),
        "asyncapi: 3.0.0\ninfo: {title: Rooms, version: 1.0.0}\nchannels:\n  rooms:\n    address: /rooms\n    messages:\n      said: {$ref: 'common/messages.yaml#/Said'}\noperations:\n  hear: {action: send, channel: {$ref: '#/channels/rooms'}}\n",
    )
    .unwrap();
    std::fs::write(
        bundle.join("common/messages.yaml"),
        "Said:\n  name: Said\n  payload: {type: string}\n",
    )
    .unwrap();
    let rooms = json(&cli(
        &data,
        &[
            "api",
            "import",
            "--dir",
            bundle.to_str().unwrap(),
            "--target",
            &chat_url,
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(rooms["identifier"], "rooms");
    assert_eq!(rooms["channels"][0]["serverToClient"][0], "Said");

    let created = json(&cli(
        &data,
        &[
            "api",
            "import",
            "--file",
            sample().to_str().unwrap(),
            "--target",
            &chat_url,
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(created["identifier"], "chat-api");
    let text = ok(&cli(&data, &["api", "list"], None));
    assert!(
        text.contains("chat-api") && text.contains("Created"),
        "{text}"
    );

    let updated = json(&cli(
        &data,
        &[
            "api",
            "update",
            "chat-api",
            "--max-connections",
            "50",
            "--idle-timeout",
            "20",
            "--backend-header",
            "x-team=blue",
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(updated["limits"]["maxConnections"], 50);
    assert_eq!(updated["limits"]["idleTimeoutSeconds"], 20);
    assert_eq!(
        updated["limits"]["pongTimeoutSeconds"], 10,
        "other limits keep their values"
    );
    assert_eq!(updated["backendHeaderNames"][0], "x-team");

    let deployed = deploy_to_development(&data);
    assert_eq!(deployed["environment"], "development");
    let shown = json(&cli(
        &data,
        &["api", "show", "chat-api", "-o", "json"],
        None,
    ));
    let d = &shown["deployments"][0];
    assert_eq!(d["environment"], "development");
    assert_eq!(d["revision"], 1);
    assert_eq!(d["accessMode"], "external");
    let dev_url = d["url"].as_str().unwrap();
    assert!(dev_url.starts_with(
        endpoints["environments"]["development"]["external"]
            .as_str()
            .unwrap()
    ));

    // The test console gets its own credential and prints what arrives, timestamped.
    let console = ok(&cli(
        &data,
        &[
            "api",
            "test",
            "chat-api",
            "--env",
            "development",
            "--linger",
            "0.5",
        ],
        Some("{\"type\":\"Connect\",\"username\":\"cli\"}\n"),
    ));
    assert!(console.contains(r#"< {"type":"Connect","room":1,"userCount":1,"maxUsers":5,"status":"Online","username":"cli","totalUsers":1}"#), "{console}");
    assert!(
        console
            .lines()
            .any(|l| l.starts_with('[') && l.contains("] <")),
        "{console}"
    );

    let promoted = json(&cli(
        &data,
        &[
            "api",
            "promote",
            "chat-api",
            "--from",
            "development",
            "--to",
            "production",
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(promoted["revision"], 1);
    let published = ok(&cli(
        &data,
        &[
            "api",
            "lifecycle",
            "chat-api",
            "publish",
            "--display-name",
            "Chat",
        ],
        None,
    ));
    assert!(published.contains("Published"), "{published}");

    let key = json(&cli(
        &data,
        &["api", "key", "create", "chat-api", "-o", "json"],
        None,
    ));
    let key = key["key"].as_str().unwrap().to_string();
    let prod_url = promoted["url"].as_str().unwrap();
    let chatted = ok(&cli(
        &data,
        &[
            "connect",
            prod_url,
            "--api-key",
            &key,
            "--linger",
            "0.5",
            "-o",
            "json",
        ],
        Some("{\"type\":\"Connect\",\"username\":\"prod\"}\n"),
    ));
    let events: Vec<Value> = chatted
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "received"
            && e["data"]
                .as_str()
                .unwrap()
                .contains("\"username\":\"prod\"")),
        "{chatted}"
    );

    // Live connections from the CLI: a client stays connected while an operator lists
    // it, sends it a message and closes it.
    let mut client = Command::new(BIN)
        .args(["connect", prod_url, "--api-key", &key, "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let list = || {
        json(&cli(
            &data,
            &[
                "api",
                "connections",
                "chat-api",
                "--env",
                "production",
                "-o",
                "json",
            ],
            None,
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listed = list();
    while listed.as_array().map_or(0, Vec::len) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        listed = list();
    }
    assert_eq!(listed.as_array().map_or(0, Vec::len), 1, "{listed}");
    assert_eq!(listed[0]["environment"], "production");
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let shown = ok(&cli(&data, &["api", "connections", "chat-api"], None));
    assert!(shown.contains(&id), "{shown}");
    ok(&cli(
        &data,
        &[
            "api",
            "connections",
            "send",
            "chat-api",
            &id,
            "--text",
            "from the operator",
        ],
        None,
    ));
    ok(&cli(
        &data,
        &[
            "api",
            "connections",
            "close",
            "chat-api",
            &id,
            "--code",
            "4000",
            "--reason",
            "maintenance",
        ],
        None,
    ));
    // Read what the client printed up to its close (its input stays open until then).
    let input = client.stdin.take();
    let mut printed = String::new();
    for line in BufReader::new(client.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("\"closed\"") {
            break;
        }
    }
    drop(input);
    client.wait().unwrap();
    assert!(printed.contains("from the operator"), "{printed}");
    assert!(printed.contains("by server: 4000 maintenance"), "{printed}");
    let out = cli(
        &data,
        &["api", "connections", "close", "chat-api", &id],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no live connection"));

    // Without a key the gateway's reason is shown.
    let out = cli(&data, &["connect", prod_url], Some(""));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // Revisions, rollback, history, diff, lifecycle history and versions.
    let api = |args: &[&str]| {
        json(&cli(
            &data,
            &[&["api"], args, &["-o", "json"]].concat(),
            None,
        ))
    };
    api(&["update", "chat-api", "--max-connections", "40"]);
    let second = api(&["deploy", "chat-api", "--env", "development"]);
    assert_eq!(second["revision"], 2);
    let promoted = api(&["promote", "chat-api", "--target", &chat_url]);
    assert_eq!(
        (promoted["revision"].clone(), promoted["ownValues"].clone()),
        (serde_json::json!(2), serde_json::json!(["target"]))
    );
    let rolled = api(&[
        "deploy",
        "chat-api",
        "--env",
        "production",
        "--revision",
        "1",
    ]);
    assert_eq!(rolled["revision"], 1);
    assert_eq!(
        rolled["target"],
        chat_url.as_str(),
        "production keeps its own target"
    );
    let history = api(&["history", "chat-api", "--env", "production"]);
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["promote", "promote", "rollback"]);
    assert_eq!(history[2]["who"], "operator");
    let diff = api(&["diff", "chat-api", "--from", "1", "--to", "2"]);
    assert_eq!(diff["values"][0]["field"], "limits.maxConnections");
    let text = ok(&cli(
        &data,
        &["api", "diff", "chat-api", "--from", "1", "--to", "2"],
        None,
    ));
    assert!(text.contains("limits.maxConnections: 50 -> 40"), "{text}");
    let text = ok(&cli(&data, &["api", "history", "chat-api"], None));
    assert!(
        text.contains("rollback") && text.contains("revision 2 -> 1"),
        "{text}"
    );
    let steps = api(&["lifecycle", "chat-api", "history"]);
    assert_eq!(steps[0]["from"], "Created");
    assert_eq!(steps[0]["to"], "Published");
    let v11 = api(&[
        "version",
        "create",
        "chat-api",
        "--version",
        "1.1.0",
        "--from-revision",
        "1",
    ]);
    assert_eq!(v11["basePath"], "/default/chat-api/v1.1.0");
    assert_eq!(v11["limits"]["maxConnections"], 50, "revision 1's values");
    let versions = api(&["version", "list", "chat-api@1.1.0"]);
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    let out = cli(&data, &["api", "show", "chat-api"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`chat-api@1.0.0`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM stops the platform cleanly.
    let pid = serve.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut serve = serve;
    let start = Instant::now();
    loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(chat);
    // Never a panic, and never the admin token: only the file that holds it.
    let printed = std::fs::read_to_string(&serve_log).unwrap();
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(!printed.contains("panicked"), "{printed}");
    assert!(
        !printed.contains(token.trim()),
        "the admin token was printed"
    );
    assert!(printed.contains("admin-token"), "{printed}");
}

#[test]
fn bad_configuration_exits_64_before_binding_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen-management",
            "not-an-address",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen-management"));
    assert!(!dir.path().join("endpoints.json").exists());
}

#[test]
fn cli_without_a_running_platform_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["api", "list"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("asyncgate serve"));
}

#[test]
fn contract_validate_shows_what_import_would_derive_and_fails_on_invalid() {
    let out = Command::new(BIN)
        .args(["contract", "validate"])
        .arg(sample())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("valid AsyncAPI 2.0.0 contract: Chat API 1.0.0"),
        "{text}"
    );
    assert!(text.contains("identifier chat-api"), "{text}");

    let v3 =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/chat-service-asyncapi-3.yaml");
    let out = Command::new(BIN)
        .args(["contract", "validate", "-o", "json"])
        .arg(&v3)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["asyncapiVersion"], "3.0.0");
    assert_eq!(
        report["channels"][0]["clientSends"],
        serde_json::json!(["Connect", "Data"])
    );
    assert_eq!(report["derived"]["target"], "ws://127.0.0.1:9410");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "asyncapi: 3.0.0\ninfo: {title: t, version: '1'}\noperations:\n  x: {action: publish, channel: {$ref: '#/channels/none'}}\n").unwrap();
    let out = Command::new(BIN)
        .args(["contract", "validate", "-o", "json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(
        report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["pointer"] == "/operations/x/action"),
        "{report}"
    );
}

/// The status line of a WebSocket handshake made on a raw socket, and the socket (kept
/// open by the caller).
fn handshake(url: &str, key: &str) -> (String, std::net::TcpStream) {
    use std::io::Read;
    let rest = url.trim_start_matches("ws://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = std::net::TcpStream::connect(authority).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\napi-key: {key}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n") && tcp.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).trim().to_string(), tcp)
}

#[test]
fn a_gateway_short_of_file_descriptors_leaves_the_management_api_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_chat, chat_url) = chat_backend();
    // A process allowed 320 descriptors: the gateway takes (320 - 256) / 2 = 32
    // connections, two descriptors each, and leaves the rest to the management API.
    let _serve = Proc(
        Command::new("bash")
            .args([
                "-c",
                "ulimit -n 320 && exec \"$0\" serve --ephemeral-ports --data-dir \"$1\"",
            ])
            .arg(BIN)
            .arg(&data)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&data.join("endpoints.json"));
    let file = sample();
    let import = [
        "api",
        "import",
        "--file",
        file.to_str().unwrap(),
        "--target",
        &chat_url,
    ];
    ok(&cli(&data, &import, None));
    let deployed = deploy_to_development(&data);
    let url = deployed["url"].as_str().unwrap().to_string();
    let key = json(&cli(
        &data,
        &["api", "key", "create", "chat-api", "-o", "json"],
        None,
    ))["key"]
        .as_str()
        .unwrap()
        .to_string();

    let mut held = Vec::new();
    let (mut upgraded, mut refused) = (0, 0);
    for _ in 0..48 {
        let (status, tcp) = handshake(&url, &key);
        if status.starts_with("HTTP/1.1 101 ") {
            upgraded += 1;
            held.push(tcp);
        } else {
            assert!(status.starts_with("HTTP/1.1 503 "), "{status}");
            refused += 1;
        }
    }
    eprintln!("{upgraded} connections upgraded, {refused} refused with 503");
    assert!((1..=32).contains(&upgraded), "{upgraded} upgraded");
    assert_eq!(upgraded + refused, 48);
    // With the gateway full, the management API still answers.
    let listed = ok(&cli(&data, &["api", "list"], None));
    assert!(listed.contains("chat-api"), "{listed}");
    drop(held);
}

/// A `serve` process on a fresh data folder logging at debug level to `log`; returned
/// once its endpoints are written.
fn serve(data: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let serve = Proc(
        Command::new(BIN)
            .args(["serve", "--ephemeral-ports", "--data-dir"])
            .arg(data)
            .env("ASYNCGATE_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for(&data.join("endpoints.json"));
    serve
}

#[test]
fn organizations_users_and_applications_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve_log = dir.path().join("serve.log");
    let serve = serve(&data, &serve_log);

    // The operator (admin token) creates the organization; its admin signs in.
    let org = json(&cli(
        &data,
        &["org", "create", "Stark Industries", "-o", "json"],
        None,
    ));
    assert_eq!(org["handle"], "stark-industries");
    let added = json(&cli(
        &data,
        &[
            "user",
            "add",
            "tony@stark.example",
            "--org",
            "stark-industries",
            "--role",
            "admin",
            "--password-stdin",
            "-o",
            "json",
        ],
        Some("iron man suit 42\n"),
    ));
    assert_eq!(added["role"], "admin");
    let out = cli(
        &data,
        &["login", "--email", "tony@stark.example", "--password-stdin"],
        Some("wrong password\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong email or password"));
    let me = json(&cli(
        &data,
        &[
            "login",
            "--email",
            "tony@stark.example",
            "--password-stdin",
            "-o",
            "json",
        ],
        Some("iron man suit 42\n"),
    ));
    assert_eq!(me["organizations"][0]["handle"], "stark-industries");
    // Its admin opens sign-up in the developer portal; the setting reads back.
    let closed = json(&cli(&data, &["org", "settings", "-o", "json"], None));
    assert_eq!(closed["subscriberSignup"], false);
    let opened = json(&cli(
        &data,
        &["org", "settings", "--subscriber-signup", "on", "-o", "json"],
        None,
    ));
    assert_eq!(opened["subscriberSignup"], true);
    let session = std::fs::read_to_string(data.join("cli-session")).unwrap();
    assert!(session.starts_with("ags_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("cli-session"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the session file is its owner's alone");
    }

    // Signed in, commands act as tony in his organization.
    let who = json(&cli(&data, &["whoami", "-o", "json"], None));
    assert_eq!(who["email"], "tony@stark.example");
    let api = json(&cli(
        &data,
        &[
            "api",
            "import",
            "--file",
            sample().to_str().unwrap(),
            "--target",
            "ws://127.0.0.1:9",
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(api["basePath"], "/stark-industries/chat-api/v1.0.0");
    deploy_to_development(&data);
    ok(&cli(
        &data,
        &["api", "lifecycle", "chat-api", "publish"],
        None,
    ));
    let app = json(&cli(
        &data,
        &["app", "create", "Chat App", "-o", "json"],
        None,
    ));
    for field in ["id", "clientId", "clientSecret"] {
        assert!(app[field].as_str().is_some_and(|v| !v.is_empty()), "{app}");
    }
    let sub = json(&cli(
        &data,
        &[
            "app",
            "subscribe",
            "Chat App",
            "chat-api",
            "--plan",
            "Gold",
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(sub["plan"], "Gold");
    let key = json(&cli(
        &data,
        &[
            "app",
            "key",
            "create",
            "Chat App",
            "--env",
            "production",
            "-o",
            "json",
        ],
        None,
    ));
    assert!(key["key"].as_str().unwrap().starts_with("agk_"));
    let shown = json(&cli(
        &data,
        &["app", "show", "Chat App", "-o", "json"],
        None,
    ));
    assert_eq!(shown["subscriptions"][0]["plan"], "Gold");
    let plans = json(&cli(&data, &["plan", "list", "-o", "json"], None));
    assert_eq!(plans.as_array().map(Vec::len), Some(4));

    // The audit log names tony, and holds none of the secrets shown above.
    let audit = cli(
        &data,
        &["audit", "--user", "tony@stark.example", "-o", "json"],
        None,
    );
    let audit_text = ok(&audit);
    let entries: Value = serde_json::from_str(&audit_text).unwrap();
    assert!(entries
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "app.subscribe"));
    let secrets = [
        "iron man suit 42",
        app["clientSecret"].as_str().unwrap(),
        key["key"].as_str().unwrap(),
        session.trim(),
    ];
    for secret in secrets {
        assert!(!audit_text.contains(secret));
    }

    // Signed out, the CLI falls back to the admin token, which acts in the default org.
    ok(&cli(&data, &["logout"], None));
    assert!(!data.join("cli-session").exists());
    let apis = json(&cli(&data, &["api", "list", "-o", "json"], None));
    assert_eq!(apis.as_array().map(Vec::len), Some(0));
    let apis = json(&cli(
        &data,
        &["api", "list", "--org", "stark-industries", "-o", "json"],
        None,
    ));
    assert_eq!(apis.as_array().map(Vec::len), Some(1));

    // Nothing secret in what serve logged (at debug level), nor in an export.
    let export = ok(&cli(
        &data,
        &["api", "export", "chat-api", "--org", "stark-industries"],
        None,
    ));
    drop(serve);
    let log = std::fs::read_to_string(&serve_log).unwrap();
    assert!(log.contains("DEBUG"), "the log was captured at debug level");
    for secret in secrets {
        assert!(!log.contains(secret), "a secret is in the log");
        assert!(!export.contains(secret), "a secret is in the export");
    }
}
