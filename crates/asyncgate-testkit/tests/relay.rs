//! The gateway relays frames unchanged both ways: text, binary, ping/pong, and close codes
//! with their reasons, in either direction.

use asyncgate_testkit::{Backend, TestPlatform, WsClient};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

async fn echo_client() -> anyhow::Result<(TestPlatform, Backend, WsClient)> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    c.recv_json().await?; // the echo backend's handshake description
    Ok((gw, echo, c))
}

#[tokio::test]
async fn text_binary_and_pings_pass_unchanged() -> anyhow::Result<()> {
    let (gw, _echo, mut c) = echo_client().await?;
    c.send_text("héllo ✓").await?;
    assert_eq!(c.recv_text().await?, "héllo ✓");
    let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    c.send(Message::binary(blob.clone())).await?;
    match c.next_message().await? {
        Message::Binary(b) => assert_eq!(b.as_ref(), blob.as_slice()),
        other => panic!("expected binary, got {other:?}"),
    }
    c.send(Message::Ping(b"are you there".to_vec().into()))
        .await?;
    loop {
        match c.next_any().await? {
            Message::Pong(p) => {
                assert_eq!(p.as_ref(), b"are you there");
                break;
            }
            Message::Ping(_) => continue,
            other => panic!("expected pong, got {other:?}"),
        }
    }
    c.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_backends_close_code_and_reason_reach_the_client() -> anyhow::Result<()> {
    let (gw, _echo, mut c) = echo_client().await?;
    c.send_text("close:4000:room closed").await?;
    assert_eq!(c.recv_close().await?, (4000, "room closed".to_string()));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_clients_close_code_reaches_the_backend_and_comes_back() -> anyhow::Result<()> {
    let (gw, _echo, mut c) = echo_client().await?;
    c.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: "bye".into(),
    })))
    .await?;
    // The echo backend answers the close with the same code (RFC 6455 5.5.1).
    assert_eq!(c.recv_close().await?, (4001, "bye".to_string()));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_backend_crash_closes_the_client_with_1011() -> anyhow::Result<()> {
    let (gw, _echo, mut c) = echo_client().await?;
    c.send_text("crash").await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.contains("backend"), "{reason}");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_backend_breaking_the_protocol_gets_1007_and_the_client_1011() -> anyhow::Result<()> {
    let (gw, echo, mut c) = echo_client().await?;
    c.send_text("bad-utf8").await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1011, "{reason}");
    assert_eq!(reason, "the backend broke the WebSocket protocol");
    assert_eq!(
        echo.wait_event("close:").await?,
        "close:1007:invalid UTF-8 in a text message"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn shutting_the_platform_down_closes_live_connections_with_1001() -> anyhow::Result<()> {
    let (gw, _echo, mut c) = echo_client().await?;
    gw.shutdown().await;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1001);
    assert_eq!(reason, "gateway shutting down");
    Ok(())
}

#[tokio::test]
async fn subprotocols_are_negotiated_end_to_end() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut c = WsClient::connect(
        &url,
        &[
            ("api-key", &key),
            ("sec-websocket-protocol", "chat.v2, chat.v1"),
        ],
    )
    .await?;
    let seen = c.recv_json().await?;
    assert_eq!(
        seen["headers"]["sec-websocket-protocol"], "chat.v2, chat.v1",
        "the offer reaches the backend"
    );
    assert_eq!(
        c.protocol.as_deref(),
        Some("chat.v2"),
        "the backend's choice reaches the client"
    );
    c.close().await;
    let refused = WsClient::refused(
        &url,
        &[
            ("api-key", &key),
            ("sec-websocket-protocol", "rogue-request"),
        ],
    )
    .await?;
    assert_eq!(refused.status, 502);
    assert!(
        refused.body.contains("backend_subprotocol"),
        "{}",
        refused.body
    );
    gw.shutdown().await;
    Ok(())
}
