//! Hostile input at the gateway's edges, over real sockets: frames in unusual encodings
//! from either side, credentials spelled every way, forged forwarding headers, paths
//! that would move the backend's path, and live connections that must follow what is
//! served (revocation, access mode, undeploy, deletion, credential expiry).

use asyncgate_testkit::{raw_frame, raw_upgrade, Backend, TestPlatform, WsClient};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_length_in_a_longer_form_than_needed_closes_its_sender_with_1002_from_either_side(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;

    // From the client: a masked ping of 125 bytes (the most a control frame holds) with
    // its length in the 16-bit form, then in the 64-bit form — longer on the wire than
    // any minimal control frame — each cut over two writes.
    for header in [
        vec![0x89u8, 0x80 | 126, 0x00, 125],
        vec![0x89u8, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 125],
    ] {
        let mut tcp = raw_upgrade(&url, &[("api-key", &key)]).await?;
        let (_, seen) = raw_frame(&mut tcp).await?; // the echo backend's greeting
        assert!(!seen.is_empty());
        let mut frame = header.clone();
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend((0..125).map(|i| b'p' ^ [1u8, 2, 3, 4][i % 4]));
        let cut = header.len() - 1;
        tcp.write_all(&frame[..cut]).await?;
        tcp.flush().await?;
        tcp.write_all(&frame[cut..]).await?;
        let (first, payload) = raw_frame(&mut tcp).await?;
        assert_eq!(first, 0x88, "a close frame");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
        assert_eq!(
            std::str::from_utf8(&payload[2..])?,
            "frame length not in its shortest form"
        );
    }
    assert_eq!(
        echo.wait_event("close:").await?,
        "close:1001:client went away"
    );

    // From the backend: the client is told the backend broke the protocol (1011) and
    // the backend gets 1002.
    let mut c = WsClient::with_key(&url, &key).await?;
    c.recv_json().await?;
    c.send_text("raw-nonminimal-ping").await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1011, "{reason}");
    gw.shutdown().await; // fails the test if any connection task panicked
    Ok(())
}

/// The request the echo backend saw for a connection with `headers` to `url`.
async fn seen_by_backend(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Value> {
    let mut c = WsClient::connect(url, headers).await?;
    let seen = c.recv_json().await?;
    c.close().await;
    Ok(seen)
}

#[tokio::test]
async fn no_spelling_of_a_credential_reaches_the_backend_and_two_are_refused() -> anyhow::Result<()>
{
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("{url}?APIKEY={key}&room=1"), vec![]),
        (format!("{url}?api%6Bey={key}"), vec![]),
        (format!("{url}?ApiKey={key}&apikey={key}"), vec![]),
        (format!("{url}?apikey={key}"), vec![("api-key", &key)]),
        (format!("{url}?room=1"), vec![("API-KEY", &key)]),
    ];
    for (u, headers) in &cases {
        let seen = seen_by_backend(u, headers).await?.to_string();
        assert!(!seen.contains(&key), "{u} {headers:?}: {seen}");
        assert!(!seen.to_ascii_lowercase().contains("apikey"), "{seen}");
    }
    let seen = seen_by_backend(&format!("{url}?APIKEY={key}&room=1"), &[]).await?;
    assert!(
        seen["path"].as_str().unwrap().ends_with("?room=1"),
        "{seen}"
    );

    let other = gw.create_key("chat-api").await?;
    for (u, headers) in [
        (
            format!("{url}?apikey={other}"),
            vec![("api-key", key.as_str())],
        ),
        (format!("{url}?apikey={key}&APIKEY={other}"), vec![]),
        (
            format!("{url}?access_token=x"),
            vec![("api-key", key.as_str())],
        ),
    ] {
        let refused = WsClient::refused(&u, &headers).await?;
        assert_eq!(refused.status, 400, "{u}");
        assert!(
            refused.body.contains("ambiguous_credentials"),
            "{}",
            refused.body
        );
    }
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn forwarding_headers_are_the_gateways_unless_the_peer_is_a_trusted_proxy(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let forged = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
    ];
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut headers = forged.to_vec();
    headers.push(("api-key", &key));
    let seen = seen_by_backend(&url, &headers).await?;
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{h}");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["forwarded"]
        .as_str()
        .unwrap()
        .starts_with("for=127.0.0.1;proto=http"));
    assert!(!h.to_string().contains("6.6.6.6") && !h.to_string().contains("evil"));
    gw.shutdown().await;

    // Behind a trusted proxy (here: loopback), its values are kept and this hop added.
    let gw = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        c.gateway.trusted_proxies =
            asyncgate_gateway::forwarded::TrustedProxies::parse(&["127.0.0.0/8"]).unwrap();
    })
    .await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut headers = forged.to_vec();
    headers.push(("api-key", &key));
    let seen = seen_by_backend(&url, &headers).await?;
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1", "{h}");
    assert_eq!(h["x-real-ip"], "6.6.6.6");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "evil.example");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn path_segments_that_could_move_the_backend_path_get_400() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let contract = asyncgate_testkit::SAMPLE_CONTRACT.replace("  /:\n", "  /rooms/{roomId}:\n");
    assert_ne!(
        contract,
        asyncgate_testkit::SAMPLE_CONTRACT,
        "the sample has a `/` channel"
    );
    gw.client
        .post(
            "/apis/import",
            &json!({ "contract": contract, "target": echo.url }),
        )
        .await?;
    let base = gw.deploy("chat-api", "development", "external").await?["url"]
        .as_str()
        .unwrap()
        .to_string();
    let key = gw.create_key("chat-api").await?;
    let seen = seen_by_backend(&format!("{base}/rooms/42"), &[("api-key", &key)]).await?;
    assert!(
        seen["path"].as_str().unwrap().ends_with("/rooms/42"),
        "{seen}"
    );
    for bad in ["..", "%2e%2E", ".", "a%2Fb", "a%00b", "a%5cb"] {
        let refused =
            WsClient::refused(&format!("{base}/rooms/{bad}"), &[("api-key", &key)]).await?;
        assert_eq!(refused.status, 400, "{bad}");
        assert!(refused.body.contains("bad_path"), "{}", refused.body);
    }
    gw.shutdown().await;
    Ok(())
}

fn short_grace(c: &mut asyncgate::config::ServeConfig) {
    c.import.allow_private_addresses = true;
    c.gateway.undeploy_grace = Duration::from_millis(200);
}

#[tokio::test]
async fn live_connections_that_would_now_be_refused_are_closed() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start_with(short_grace).await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let other = gw.create_key("chat-api").await?;

    // A revoked key's connection is closed at once with 1008; another key's lives on.
    let mut revoked = WsClient::with_key(&url, &key).await?;
    let mut kept = WsClient::with_key(&url, &other).await?;
    let keys = gw.client.get("/apis/chat-api/keys").await?;
    let key_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| key.starts_with(k["hint"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.client
        .delete(&format!("/apis/chat-api/keys/{key_id}"))
        .await?;
    revoked.recv_json().await?;
    assert_eq!(
        revoked.recv_close().await?,
        (1008, "API key revoked".to_string())
    );
    kept.recv_json().await?;
    kept.send_text("still here").await?;
    assert_eq!(kept.recv_text().await?, "still here");

    // External to Internal: the external connection closes, an internal one is served.
    gw.deploy("chat-api", "development", "internal").await?;
    assert_eq!(
        kept.recv_close().await?,
        (
            1001,
            "API no longer served on the external listener".to_string()
        )
    );
    let internal = format!(
        "{}/default/chat-api/v1.0.0",
        gw.listener("development", false)
    );
    let mut inside = WsClient::with_key(&internal, &other).await?;
    inside.recv_json().await?;

    // Deleting the API closes it too.
    gw.client.delete("/apis/chat-api").await?;
    assert_eq!(
        inside.recv_close().await?,
        (1001, "API undeployed".to_string())
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_token_connection_ends_at_the_tokens_expiry_when_the_api_says_so() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        c.test_token_ttl = Duration::from_secs(2);
    })
    .await?;
    gw.import_sample(&echo.url).await?;
    gw.deploy("chat-api", "development", "external").await?;
    let token = |gw: &TestPlatform| {
        let client = gw.client.clone();
        async move {
            let t = client
                .post(
                    "/apis/chat-api/test-token",
                    &json!({ "environment": "development" }),
                )
                .await?;
            anyhow::Ok((
                t["deployment"]["url"].as_str().unwrap().to_string(),
                format!("Bearer {}", t["token"].as_str().unwrap()),
            ))
        }
    };

    // Off (the default): the connection outlives its token.
    let (url, bearer) = token(&gw).await?;
    let mut outlives = WsClient::connect(&url, &[("authorization", &bearer)]).await?;
    outlives.recv_json().await?;

    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "limits": { "closeOnCredentialExpiry": true } }),
        )
        .await?;
    gw.deploy("chat-api", "development", "external").await?;
    let (url, bearer) = token(&gw).await?;
    let mut ends = WsClient::connect(&url, &[("authorization", &bearer)]).await?;
    ends.recv_json().await?;
    assert_eq!(
        ends.recv_close().await?,
        (1008, "credential expired".to_string())
    );
    // The first connection, made under the old revision, is still open.
    outlives.send_text("after expiry").await?;
    assert_eq!(outlives.recv_text().await?, "after expiry");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn two_deployments_never_answer_the_same_path() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let import = |identifier: &str, base_path: &str, contract: String| {
        let body = json!({ "contract": contract, "target": echo.url, "identifier": identifier, "basePath": base_path });
        let client = gw.client.clone();
        async move { client.post("/apis/import", &body).await }
    };
    let rooms = asyncgate_testkit::SAMPLE_CONTRACT.replace("  /:\n", "  /rooms/{roomId}:\n");
    import("first", "/shared", rooms).await?;
    gw.deploy("first", "development", "external").await?;
    // The design moves away, but what is deployed still answers /shared.
    gw.client
        .patch("/apis/first", &json!({ "basePath": "/moved" }))
        .await?;
    let sample = asyncgate_testkit::SAMPLE_CONTRACT.to_string();
    import("second", "/shared", sample.clone()).await?;
    let err = gw
        .deploy("second", "development", "internal")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("409") && err.contains("/shared"), "{err}");
    // A base path inside another API's channel addresses is refused too.
    import("third", "/shared/rooms/42", sample).await?;
    let err = gw
        .deploy("third", "development", "external")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("409") && err.contains("/shared/rooms/{roomId}"),
        "{err}"
    );
    // Another environment is free, and so is the first API's own redeploy.
    gw.deploy("second", "production", "external").await?;
    gw.deploy("first", "development", "external").await?;
    gw.deploy("second", "development", "external").await?;
    gw.shutdown().await;
    Ok(())
}

/// Open a TCP connection to `url`'s listener and send nothing.
async fn idle_socket(url: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let authority = url.trim_start_matches("ws://").split('/').next().unwrap();
    Ok(tokio::net::TcpStream::connect(authority).await?)
}

/// Everything a socket receives until the gateway closes it.
async fn answer(mut tcp: tokio::net::TcpStream) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(asyncgate_testkit::WAIT, tcp.read_to_end(&mut out)).await??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn handshakes_in_progress_are_bounded_per_address_and_by_a_head_deadline(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        c.gateway.max_pending_handshakes_per_address = 2;
        c.gateway.request_head_timeout = Duration::from_secs(1);
    })
    .await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let gateway = gw.platform.gateway().clone();
    let me = "127.0.0.1".parse()?;
    let first = idle_socket(&url).await?;
    let second = idle_socket(&url).await?;
    asyncgate_testkit::eventually("two handshakes in progress", || {
        gateway.pending_handshakes(me) == 2
    })
    .await?;
    let third = answer(idle_socket(&url).await?).await?;
    assert!(third.starts_with("HTTP/1.1 503 "), "{third}");
    assert!(third.contains("too_many_handshakes"), "{third}");
    // The idle ones meet the head deadline, which frees their places.
    for idle in [first, second] {
        let answered = answer(idle).await?;
        assert!(answered.starts_with("HTTP/1.1 408 "), "{answered}");
    }
    asyncgate_testkit::eventually("no handshake in progress", || {
        gateway.pending_handshakes(me) == 0
    })
    .await?;
    WsClient::with_key(&url, &key).await?.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn at_the_connection_total_new_clients_get_503_and_management_still_answers(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        c.gateway.max_connections = 2;
    })
    .await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let gateway = gw.platform.gateway().clone();
    let a = WsClient::with_key(&url, &key).await?;
    let _b = WsClient::with_key(&url, &key).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 503);
    assert!(
        refused.body.contains("connection_limit_reached"),
        "{}",
        refused.body
    );
    // The management API still answers while the gateway is full.
    assert_eq!(gw.client.get("/apis").await?.as_array().unwrap().len(), 1);
    a.close().await;
    asyncgate_testkit::eventually("a place to be freed", || gateway.connection_tasks() < 2).await?;
    let mut third = WsClient::with_key(&url, &key).await?;
    third.recv_json().await?;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn stored_text_is_bounded_and_free_of_control_characters() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let target = "ws://127.0.0.1:1";
    // A contract's title with a terminal escape is imported without it.
    let contract = asyncgate_testkit::SAMPLE_CONTRACT.replacen(
        "title: 'Chat API'",
        "title: \"\\e[31mRed\\e[0m Chat API\"",
        1,
    );
    assert_ne!(contract, asyncgate_testkit::SAMPLE_CONTRACT);
    let api = gw
        .client
        .post(
            "/apis/import",
            &json!({ "contract": contract, "target": target }),
        )
        .await?;
    let name = api["name"].as_str().unwrap();
    assert!(
        name.starts_with("[31mRed[0m") && !name.contains('\u{1b}'),
        "{name:?}"
    );
    let path = format!("/apis/{}", api["id"].as_str().unwrap());
    // What a user types must pass as it is.
    for (patch, field) in [
        (json!({ "name": "Chat\u{1b}[2J" }), "name"),
        (json!({ "name": "n".repeat(121) }), "name"),
        (json!({ "version": "1\r\n2" }), "version"),
        (json!({ "description": "bell\u{7}" }), "description"),
        (json!({ "identifier": "a".repeat(65) }), "identifier"),
        (json!({ "basePath": "/a/../b" }), "basePath"),
        (json!({ "target": "ws://user:pw@127.0.0.1:1" }), "target"),
    ] {
        let err = gw
            .client
            .patch(&path, &patch)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("400") && err.contains(field), "{patch}: {err}");
        assert!(!err.contains("pw@"), "{err}");
    }
    assert_eq!(gw.client.get(&path).await?["name"], api["name"]);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_identifier_in_two_projects_is_never_resolved_silently() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let target = "ws://127.0.0.1:1";
    let mut ids = Vec::new();
    for project in ["alpha", "beta"] {
        let api = gw
            .client
            .post(
                "/apis/import",
                &json!({ "contract": asyncgate_testkit::SAMPLE_CONTRACT, "target": target, "project": project }),
            )
            .await?;
        ids.push(api["id"].as_str().unwrap().to_string());
    }
    let err = gw
        .client
        .get("/apis/chat-api")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("409") && err.contains("alpha") && err.contains("beta"),
        "{err}"
    );
    assert_eq!(
        gw.client.get("/apis/beta%2Fchat-api").await?["id"],
        ids[1].as_str()
    );
    assert_eq!(
        gw.client.get(&format!("/apis/{}", ids[0])).await?["project"],
        "alpha"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_portal_shows_only_external_urls() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&echo.url).await?;
    gw.deploy("chat-api", "development", "internal").await?;
    gw.deploy("chat-api", "production", "external").await?;
    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
        .await?;
    let listed = reqwest::get(format!("{}/api/v1/portal/apis/chat-api", gw.management()))
        .await?
        .json::<Value>()
        .await?;
    let endpoints = listed["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{listed}");
    assert_eq!(endpoints[0]["environment"], "production");
    assert!(!listed
        .to_string()
        .contains(&gw.listener("development", false)));
    gw.shutdown().await;
    Ok(())
}
