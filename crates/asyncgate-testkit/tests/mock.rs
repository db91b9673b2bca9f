//! The mock backend made from a contract, over real sockets: the guide's chat contract
//! (server messages generated from its schema's examples, nothing echoed) and the AsyncAPI
//! specification's Kraken request/reply example (a ping answered with a pong carrying the
//! request's correlation id), directly and through the gateway.

use asyncgate::mock::Mock;
use asyncgate_testkit::{TestPlatform, WsClient};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Serve `contract` as a mock on 127.0.0.1:0; its ws:// URL. Rounds of server messages
/// come on connecting and then once an hour: a test sees exactly the first.
async fn mock(contract: &str) -> anyhow::Result<(String, tokio::sync::watch::Sender<bool>)> {
    let contract = asyncgate_contract::parse(contract, &Default::default())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(Arc::new(Mock::new(&contract, Duration::from_secs(3600))).run(listener, stopped));
    Ok((url, stop))
}

fn kraken() -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/asyncapi-examples/3.0.0/kraken-websocket-request-reply-multiple-channels-asyncapi.yml",
    );
    Ok(std::fs::read_to_string(path)?)
}

#[tokio::test]
async fn the_chat_contract_mocked_sends_its_messages_and_echoes_nothing() -> anyhow::Result<()> {
    let (url, _stop) = mock(asyncgate::SAMPLE_CONTRACT).await?;
    let mut c = WsClient::connect(&url, &[]).await?;
    // The subscribe message, generated from the schema's property examples.
    assert_eq!(
        c.recv_json().await?,
        json!({ "type": "connect", "message": "Hello from user1" })
    );
    // A client message is not echoed: the next thing is the answer to a ping.
    c.send_text(r#"{"type":"Data","message":"hi"}"#).await?;
    c.send(tokio_tungstenite::tungstenite::Message::Ping(
        b"p".to_vec().into(),
    ))
    .await?;
    match c.next_any().await? {
        tokio_tungstenite::tungstenite::Message::Pong(p) => assert_eq!(&p[..], b"p"),
        other => panic!("expected the pong, got {other:?}"),
    }
    // A path that is no channel is refused at the handshake.
    let refused = WsClient::refused(&format!("{url}/nowhere"), &[]).await?;
    assert_eq!(refused.status, 404);
    assert!(
        refused.body.contains("no channel at /nowhere"),
        "{}",
        refused.body
    );
    Ok(())
}

#[tokio::test]
async fn krakens_request_reply_is_answered_with_the_correlation_id_through_the_gateway(
) -> anyhow::Result<()> {
    let (mock_url, _stop) = mock(&kraken()?).await?;
    let gw = TestPlatform::start().await?;
    gw.client
        .post(
            "/apis/import",
            &json!({ "contract": kraken()?, "target": mock_url, "identifier": "kraken" }),
        )
        .await?;
    gw.client
        .patch("/apis/kraken", &json!({ "messageValidation": "report" }))
        .await?;
    let url = gw.deploy("kraken", "development", "external").await?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = gw.create_key("kraken").await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    // On connecting: the server's messages (heartbeat, systemStatus), generated from the
    // schemas and so valid by the contract (validation reports what is not).
    let mut events = Vec::new();
    for _ in 0..2 {
        events.push(c.recv_json().await?["event"].clone());
    }
    events.sort_by_key(|e| e.to_string());
    assert_eq!(events, [json!("heartbeat"), json!("systemStatus")]);
    // A ping is answered with a pong carrying its reqid.
    c.send_text(r#"{"event":"ping","reqid":42}"#).await?;
    assert_eq!(
        c.recv_json().await?,
        json!({ "event": "pong", "reqid": 42 })
    );
    let api = gw.client.get("/apis/kraken").await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let gateway = gw.platform.gateway().clone();
    assert_eq!(gateway.refused_messages("development", &api), 0);
    // An unsubscribe request is answered with the reply's first example. That example,
    // the specification's own, does not match its schema (`pair` is a string where the
    // schema says array): forwarded under `report`, and counted.
    c.send_text(r#"{"event":"unsubscribe","subscription":{"name":"ohlc"},"reqid":7}"#)
        .await?;
    let status = c.recv_json().await?;
    assert_eq!(status["event"], "subscriptionStatus");
    assert_eq!(status["reqid"], 7, "{status}");
    assert_eq!(status["pair"], "XBT/EUR");
    assert_eq!(gateway.refused_messages("development", &api), 1);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_api_with_the_target_mock_is_served_by_the_platforms_own_mock() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let api = gw.import_sample("mock:").await?;
    assert_eq!(api["target"], "mock:");
    let deployed = gw.deploy("chat-api", "development", "external").await?;
    assert_eq!(deployed["target"], "mock:");
    let url = deployed["url"].as_str().unwrap_or_default().to_string();
    let key = gw.create_key("chat-api").await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    assert_eq!(
        c.recv_json().await?,
        json!({ "type": "connect", "message": "Hello from user1" })
    );
    // Anything else is refused when saved.
    let e = gw
        .client
        .patch("/apis/chat-api", &json!({ "target": "mock:elsewhere" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("HTTP 400") && e.contains("(or `mock:`)"),
        "{e}"
    );
    gw.shutdown().await;
    Ok(())
}
