//! Per-API bounds, each over real sockets: message size, keepalive and dead peers,
//! connection duration, connection limits, connect timeout, extra backend headers, and
//! what happens to live connections on redeploy, undeploy, block and retirement.

use asyncgate_testkit::{eventually, Backend, TestPlatform, WsClient};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// An echo API deployed to development with `limits`, and a key for it.
async fn echo_api(
    gw: &TestPlatform,
    echo: &Backend,
    limits: Value,
) -> anyhow::Result<(String, String)> {
    gw.import_sample(&echo.url).await?;
    gw.client
        .patch("/apis/chat-api", &json!({ "limits": limits }))
        .await?;
    let url = gw.deploy("chat-api", "development", "external").await?["url"]
        .as_str()
        .unwrap()
        .to_string();
    let key = gw.create_key("chat-api").await?;
    Ok((url, key))
}

async fn connect(url: &str, key: &str) -> anyhow::Result<WsClient> {
    let mut c = WsClient::with_key(url, key).await?;
    c.recv_json().await?; // the echo backend's handshake description
    Ok(c)
}

/// Connect and check which backend the connection reached.
async fn connect_to(url: &str, key: &str, backend: &Backend) -> anyhow::Result<WsClient> {
    let mut c = WsClient::with_key(url, key).await?;
    let seen = c.recv_json().await?;
    anyhow::ensure!(
        format!("ws://{}", seen["headers"]["host"].as_str().unwrap_or("")) == backend.url,
        "reached {seen}"
    );
    Ok(c)
}

#[tokio::test]
async fn a_too_big_message_closes_its_sender_with_1009_and_the_other_side_with_1001(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = echo_api(&gw, &echo, json!({ "maxMessageBytes": 1024 })).await?;

    let mut c = connect(&url, &key).await?;
    c.send_text(&"y".repeat(1000)).await?;
    assert_eq!(c.recv_text().await?.len(), 1000, "under the limit passes");
    c.send_text(&"y".repeat(2000)).await?;
    assert_eq!(c.recv_close().await?.0, 1009);
    assert!(echo
        .wait_event("close:1001")
        .await?
        .contains("client went away"));

    let mut c = connect(&url, &key).await?;
    c.send_text("big:5000").await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1001, "{reason}");
    assert!(reason.contains("too big"), "{reason}");
    echo.wait_event("close:1009").await?;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn quiet_clients_that_answer_pings_survive_and_dead_peers_are_closed() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = echo_api(
        &gw,
        &echo,
        json!({ "idleTimeoutSeconds": 1, "pongTimeoutSeconds": 1 }),
    )
    .await?;

    // A quiet client that keeps reading (and so answers pings) is pinged and survives.
    let mut quiet = connect(&url, &key).await?;
    // Two pings in a row, each answered (the client library answers while it reads),
    // and no close between them.
    for ping in 1..=2 {
        match quiet.next_any().await? {
            Message::Ping(_) => {}
            other => panic!("expected ping {ping}, got {other:?}"),
        }
    }
    quiet.send_text("still here").await?;
    assert_eq!(quiet.recv_text().await?, "still here");
    // The backend was pinged too while quiet, and answered.
    echo.wait_event("ping").await?;

    // A client that stops reading cannot answer: the backend is told it went away.
    let silent = connect(&url, &key).await?;
    echo.wait_event("close:1001:client stopped answering pings")
        .await?;
    drop(silent);

    // A backend that stops reading is found too; the client gets 1011.
    let mut c = connect(&url, &key).await?;
    c.send_text("silent").await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.contains("pings"), "{reason}");
    quiet.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn connections_end_at_the_maximum_duration() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = echo_api(&gw, &echo, json!({ "maxConnectionSeconds": 1 })).await?;
    let mut c = connect(&url, &key).await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(
        (code, reason.as_str()),
        (1001, "maximum connection duration reached")
    );
    echo.wait_event("close:1001:maximum connection duration")
        .await?;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn connection_limits_per_api_and_per_credential_answer_429() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = echo_api(
        &gw,
        &echo,
        json!({ "maxConnections": 3, "maxConnectionsPerCredential": 2 }),
    )
    .await?;
    let other = gw.create_key("chat-api").await?;

    let a = connect(&url, &key).await?;
    let b = connect(&url, &key).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("credential_connection_limit"),
        "{}",
        refused.body
    );
    let c = connect(&url, &other).await?;
    let refused = WsClient::refused(&url, &[("api-key", &other)]).await?;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("\"connection_limit\""),
        "{}",
        refused.body
    );
    // A closed connection frees its slot.
    a.close().await;
    let gateway = gw.platform.gateway().clone();
    let api_id = gw.client.get("/apis/chat-api").await?["id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually("the closed connection's slot to be freed", || {
        gateway.live().count("development", &api_id) < 3
    })
    .await?;
    let freed = connect(&url, &key).await?;
    freed.close().await;
    b.close().await;
    c.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_backend_that_never_answers_the_handshake_gives_504() -> anyhow::Result<()> {
    let stuck = Backend::unresponsive().await?;
    let gw = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        c.gateway.connect_timeout = Duration::from_millis(300);
    })
    .await?;
    let (url, key) = gw.deploy_sample(&stuck.url).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 504);
    assert!(refused.body.contains("backend_timeout"), "{}", refused.body);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn extra_backend_headers_reach_the_backend_and_are_not_shown() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&echo.url).await?;
    let view = gw
        .client
        .patch(
            "/apis/chat-api",
            &json!({ "backendHeaders": { "X-Backend-Key": "s3cret" } }),
        )
        .await?;
    assert_eq!(view["backendHeaderNames"], json!(["x-backend-key"]));
    assert!(!view.to_string().contains("s3cret"));
    let bad = gw
        .client
        .patch(
            "/apis/chat-api",
            &json!({ "backendHeaders": { "Host": "evil" } }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("400"), "{bad}");
    let url = gw.deploy("chat-api", "development", "external").await?["url"]
        .as_str()
        .unwrap()
        .to_string();
    let key = gw.create_key("chat-api").await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    let seen = c.recv_json().await?;
    assert_eq!(seen["headers"]["x-backend-key"], "s3cret");
    c.close().await;
    gw.shutdown().await;
    Ok(())
}

fn short_grace(c: &mut asyncgate::config::ServeConfig) {
    c.import.allow_private_addresses = true;
    c.gateway.undeploy_grace = Duration::from_millis(300);
}

#[tokio::test]
async fn undeploy_block_and_retire_close_live_connections_after_the_grace_period(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start_with(short_grace).await?;
    let (url, key) = echo_api(&gw, &echo, json!({})).await?;

    let mut c = connect(&url, &key).await?;
    gw.client
        .delete("/apis/chat-api/deployments/development")
        .await?;
    c.send_text("during the grace period").await?;
    assert_eq!(c.recv_text().await?, "during the grace period");
    assert_eq!(c.recv_close().await?, (1001, "API undeployed".to_string()));

    // Redeployed within the grace period: nothing is closed.
    gw.deploy("chat-api", "development", "external").await?;
    let mut kept = connect(&url, &key).await?;
    let checks = gw.platform.gateway().live().grace_checks();
    gw.client
        .delete("/apis/chat-api/deployments/development")
        .await?;
    gw.deploy("chat-api", "development", "external").await?;
    let live = gw.platform.gateway().clone();
    eventually("the end of the grace period", || {
        live.live().grace_checks() > checks
    })
    .await?;
    kept.send_text("still served").await?;
    assert_eq!(kept.recv_text().await?, "still served");

    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
        .await?;
    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "block" }))
        .await?;
    assert_eq!(kept.recv_close().await?, (1001, "API blocked".to_string()));
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 503);

    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
        .await?;
    let mut last = connect(&url, &key).await?;
    gw.client
        .post(
            "/apis/chat-api/lifecycle",
            &json!({ "action": "deprecate" }),
        )
        .await?;
    last.send_text("deprecated still works").await?;
    assert_eq!(last.recv_text().await?, "deprecated still works");
    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "retire" }))
        .await?;
    assert_eq!(last.recv_close().await?, (1001, "API retired".to_string()));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_redeploy_under_load_loses_duplicates_and_reorders_nothing() -> anyhow::Result<()> {
    const CONNECTIONS: usize = 500;
    const MESSAGES: usize = 20;
    let first = Backend::echo().await?;
    let second = Backend::echo().await?;
    let gw = TestPlatform::start_with(short_grace).await?;
    let (url, key) = echo_api(&gw, &first, json!({})).await?;

    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        clients.push(connect_to(&url, &key, &first).await?);
    }
    // Each connection sends numbered messages and checks the echoes, while the API is
    // redeployed to another backend half-way through.
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let mut go = go_rx.clone();
        tasks.push(tokio::spawn(async move {
            let _ = go.changed().await;
            for n in 0..MESSAGES {
                c.send_text(&format!("{i}:{n}")).await?;
                let echoed = c.recv_text().await?;
                anyhow::ensure!(
                    echoed == format!("{i}:{n}"),
                    "connection {i} expected {i}:{n}, got {echoed}"
                );
            }
            c.close().await;
            Ok::<_, anyhow::Error>(())
        }));
    }
    go_tx.send(true)?;
    gw.client
        .patch("/apis/chat-api", &json!({ "target": second.url }))
        .await?;
    let redeployed = gw.deploy("chat-api", "development", "external").await?;
    assert_eq!(redeployed["revision"], 2);
    for t in tasks {
        t.await??;
    }
    // New connections get the new revision's backend (the gateway sets Host to the target).
    let mut fresh = WsClient::with_key(&url, &key).await?;
    let seen = fresh.recv_json().await?;
    assert_eq!(
        format!("ws://{}", seen["headers"]["host"].as_str().unwrap()),
        second.url
    );
    fresh.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wss_backends_are_verified_and_a_custom_ca_can_be_trusted() -> anyhow::Result<()> {
    let (tls_echo, ca_pem) = Backend::echo_tls().await?;

    // The test CA is not trusted by default: the certificate is refused.
    let gw = TestPlatform::start().await?;
    let (url, key) = echo_api(&gw, &tls_echo, json!({})).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 502);
    assert!(refused.body.contains("backend_tls"), "{}", refused.body);
    gw.shutdown().await;

    // Trusted through gateway.backend_ca_file, it works end to end.
    let ca_dir = tempfile::tempdir()?;
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem)?;
    let gw = TestPlatform::start_with(move |c| {
        c.import.allow_private_addresses = true;
        c.gateway.backend_ca_file = Some(ca_file.clone());
    })
    .await?;
    let (url, key) = echo_api(&gw, &tls_echo, json!({})).await?;
    let mut c = connect(&url, &key).await?;
    c.send_text("over tls").await?;
    assert_eq!(c.recv_text().await?, "over tls");
    c.close().await;
    gw.shutdown().await;
    Ok(())
}
