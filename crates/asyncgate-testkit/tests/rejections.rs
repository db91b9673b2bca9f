//! Every refusal is specific: credentials, dead backends, listeners, bad contracts and
//! unauthenticated management calls.

use asyncgate_testkit::{dead_port_url, Backend, FileServer, TestPlatform, WsClient};
use serde_json::{json, Value};

#[tokio::test]
async fn clients_without_a_valid_credential_get_401_before_any_upgrade() -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&chat.url).await?;

    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (url.clone(), vec![], "missing_credentials"),
        (
            url.clone(),
            vec![("api-key", "agk_wrong")],
            "invalid_api_key",
        ),
        (format!("{url}?apikey=agk_wrong"), vec![], "invalid_api_key"),
        (
            url.clone(),
            vec![("authorization", "Bearer not.a.jwt")],
            "invalid_token",
        ),
        (format!("{url}?access_token=nope"), vec![], "invalid_token"),
    ];
    for (u, headers, code) in cases {
        let refused = WsClient::refused(&u, &headers).await?;
        assert_eq!(refused.status, 401, "{u} {headers:?}");
        let body: Value = serde_json::from_str(&refused.body)?;
        assert_eq!(body["error"], code, "{body}");
    }
    // A key revoked is refused from the next handshake on.
    let keys = gw.client.get("/apis/chat-api/keys").await?;
    let key_id = keys[0]["id"].as_str().unwrap();
    WsClient::with_key(&url, &key).await?.close().await;
    gw.client
        .delete(&format!("/apis/chat-api/keys/{key_id}"))
        .await?;
    assert_eq!(
        WsClient::refused(&url, &[("api-key", &key)]).await?.status,
        401
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_test_token_works_only_for_its_api_and_environment() -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&chat.url).await?;
    gw.deploy("chat-api", "development", "external").await?;
    gw.client
        .post(
            "/apis/chat-api/promote",
            &json!({ "from": "development", "to": "production" }),
        )
        .await?;
    let t = gw
        .client
        .post(
            "/apis/chat-api/test-token",
            &json!({ "environment": "development" }),
        )
        .await?;
    let token = t["token"].as_str().unwrap();
    let bearer = format!("Bearer {token}");
    let dev_url = t["deployment"]["url"].as_str().unwrap();
    let mut c = WsClient::connect(dev_url, &[("authorization", &bearer)]).await?;
    c.send_text(r#"{"type":"Connect","username":"t"}"#).await?;
    assert_eq!(c.recv_json().await?["type"], "Connect");
    c.close().await;
    let prod_url = format!(
        "{}/default/chat-api/v1.0.0",
        gw.listener("production", true)
    );
    let refused = WsClient::refused(&prod_url, &[("authorization", &bearer)]).await?;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("development"), "{}", refused.body);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_dead_backend_gives_502_never_a_101() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let dead = dead_port_url().await?;
    let (url, key) = gw.deploy_sample(&dead).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 502);
    assert!(
        refused.body.contains("backend_unreachable"),
        "{}",
        refused.body
    );
    // The client learns the kind of failure, never the backend's address.
    let port = dead.rsplit(':').next().unwrap();
    assert!(!refused.body.contains(port), "{}", refused.body);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_backend_that_refuses_the_upgrade_gives_502() -> anyhow::Result<()> {
    // An HTTP server that is not a WebSocket server.
    let not_ws = FileServer::serve("/", "plain text".into()).await?;
    let target = not_ws.url.replacen("http://", "ws://", 1);
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&target).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 502);
    assert!(
        refused.body.contains("backend_refused_upgrade"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains(&target), "{}", refused.body);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_internal_api_is_served_only_on_the_internal_listener() -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&chat.url).await?;
    let d = gw.deploy("chat-api", "development", "internal").await?;
    let url = d["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&gw.listener("development", false)), "{url}");
    let key = gw.create_key("chat-api").await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    c.send_text(r#"{"type":"Connect","username":"i"}"#).await?;
    assert_eq!(c.recv_json().await?["type"], "Connect");
    c.close().await;
    let external = format!(
        "{}/default/chat-api/v1.0.0",
        gw.listener("development", true)
    );
    let refused = WsClient::refused(&external, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 404);
    // Switching to External serves it on both.
    gw.deploy("chat-api", "development", "external").await?;
    WsClient::with_key(&external, &key).await?.close().await;
    WsClient::with_key(&url, &key).await?.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn credentials_never_reach_the_backend() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut c = WsClient::connect(
        &format!("{url}?room=7&apikey={key}"),
        &[("api-key", &key), ("x-team", "blue")],
    )
    .await?;
    let seen = c.recv_json().await?;
    let text = seen.to_string();
    assert!(
        !text.contains(&key),
        "the key leaked to the backend: {text}"
    );
    assert_eq!(seen["path"], "/?room=7");
    assert_eq!(seen["headers"]["x-team"], "blue");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    assert!(seen["headers"]["authorization"].is_null());
    c.close().await;
    // The browser-style bearer token parameter is removed too.
    let t = gw
        .client
        .post(
            "/apis/chat-api/test-token",
            &json!({ "environment": "development" }),
        )
        .await?;
    let token = t["token"].as_str().unwrap();
    let mut c = WsClient::connect(&format!("{url}?access_token={token}&lang=en"), &[]).await?;
    let seen = c.recv_json().await?;
    assert_eq!(seen["path"], "/?lang=en");
    assert!(!seen.to_string().contains(token));
    c.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_document_that_is_not_asyncapi_is_rejected_and_nothing_is_stored() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    for (doc, expect) in [
        (
            "openapi: 3.0.0\ninfo: {title: Pets, version: '1'}\npaths: {}\n",
            "not an AsyncAPI document",
        ),
        ("hello: [unclosed\n", "not valid YAML or JSON"),
        (
            "asyncapi: 2.6.0\ninfo: {version: '1'}\nchannels: {}\n",
            "/info/title",
        ),
        (
            "asyncapi: 9.0.0\ninfo: {title: t, version: '1'}\n",
            "unsupported AsyncAPI version",
        ),
    ] {
        let err = gw
            .client
            .post(
                "/apis/import",
                &json!({ "contract": doc, "target": "ws://127.0.0.1:1" }),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("422"), "{err}");
        assert!(err.contains(expect), "{err}");
    }
    // A contract with no WebSocket server and no target names the protocols it has.
    let mqtt = "asyncapi: 2.6.0\ninfo: {title: Sensors, version: '1'}\nservers:\n  b: {url: 'broker:1883', protocol: mqtt}\nchannels: {}\n";
    let err = gw
        .client
        .post("/apis/import", &json!({ "contract": mqtt }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mqtt") && err.contains("target"), "{err}");
    assert_eq!(gw.client.get("/apis").await?, json!([]));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn url_imports_from_loopback_are_refused_unless_allowed() -> anyhow::Result<()> {
    let served =
        FileServer::serve("/c.yaml", asyncgate_testkit::SAMPLE_CONTRACT.to_string()).await?;
    let gw = TestPlatform::start_locked_down().await?;
    let err = gw
        .client
        .post(
            "/apis/import",
            &json!({ "url": served.url, "target": "ws://127.0.0.1:1" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("403") && err.contains("loopback"), "{err}");
    let err = gw
        .client
        .post("/apis/import", &json!({ "url": "file:///etc/passwd" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("400") && err.contains("http(s)"), "{err}");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_management_api_refuses_calls_without_credentials() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1", gw.management());
    let calls = [
        ("GET", "/apis"),
        ("POST", "/apis/import"),
        ("GET", "/apis/chat-api"),
        ("DELETE", "/apis/chat-api"),
        ("POST", "/apis/chat-api/deployments"),
        ("POST", "/apis/chat-api/keys"),
        ("POST", "/apis/chat-api/test-token"),
        ("POST", "/apis/chat-api/lifecycle"),
        ("GET", "/environments"),
        ("GET", "/audit"),
    ];
    for (method, path) in calls {
        for token in [None, Some("aga_wrong")] {
            let mut req = http
                .request(method.parse()?, format!("{base}{path}"))
                .json(&json!({}));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await?;
            assert_eq!(resp.status(), 401, "{method} {path} with {token:?}");
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
        }
    }
    // The OpenAPI document is public and describes the API.
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        doc["paths"]["/api/v1/apis/import"]["post"].is_object(),
        "{doc}"
    );
    assert!(doc["components"]["securitySchemes"]["admin"].is_object());
    gw.shutdown().await;
    Ok(())
}

/// A `ws://` URL's authority and path.
fn authority_and_path(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("ws://");
    rest.split_at(rest.find('/').unwrap_or(rest.len()))
}

/// Write `request` on a raw connection to `url`'s listener and read the whole answer.
async fn raw_exchange(url: &str, request: &[u8]) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (authority, _) = authority_and_path(url);
    let mut tcp = tokio::net::TcpStream::connect(authority).await?;
    tcp.write_all(request).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(asyncgate_testkit::WAIT, tcp.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn broken_and_oversized_request_heads_get_a_status_and_a_close() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let url = gw.listener("development", true);

    let answer = raw_exchange(&url, b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").await?;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("\"error\":\"bad_request\""), "{answer}");

    let mut huge = b"GET / HTTP/1.1\r\nHost: gw\r\n".to_vec();
    while huge.len() < 20_000 {
        huge.extend_from_slice(
            b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    let answer = raw_exchange(&url, &huge).await?;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

    let answer = raw_exchange(&url, b"NOT HTTP AT ALL\r\n\r\n").await?;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

    // A plain HTTP request is told this is a WebSocket endpoint, and the connection ends.
    let answer = raw_exchange(&url, b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n").await?;
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn frames_sent_right_behind_the_handshake_are_not_lost() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let (authority, path) = authority_and_path(&url);
    let mut tcp = tokio::net::TcpStream::connect(authority).await?;
    // The handshake and a masked text frame "hi" in one write.
    let mut wire = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\napi-key: {key}\r\n\r\n"
    )
    .into_bytes();
    wire.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
    tcp.write_all(&wire).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let expected_tail = [0x81, 0x02, b'h', b'i'];
    while !got.ends_with(&expected_tail) {
        let n = tokio::time::timeout(asyncgate_testkit::WAIT, tcp.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    gw.shutdown().await;
    Ok(())
}
