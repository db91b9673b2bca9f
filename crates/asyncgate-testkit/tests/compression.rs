//! permessage-deflate through the gateway, over real sockets, with a client and a backend
//! that compress with flate2 on their own: passed through (the client's offer reaches
//! the backend, the backend's answer the client, compressed frames cross untouched),
//! terminated (the gateway answers each side, inflates, judges and deflates again), RSV1
//! refused where nothing was negotiated, a decompression bomb closed with 1009, and the
//! contract enforced on compressed messages.

use asyncgate_testkit::deflate::{DeflateClient, RSV1};
use asyncgate_testkit::{Backend, TestPlatform};
use serde_json::{json, Value};

/// Clients send and receive `{"text": string}`.
const CONTRACT: &str = r#"
asyncapi: 2.6.0
info: {title: Notes, version: 1.0.0}
channels:
  /:
    publish:
      message: {name: Say, payload: {type: object, required: [text], properties: {text: {type: string}}}}
    subscribe:
      message: {name: Said, payload: {type: object, required: [text], properties: {text: {type: string}}}}
"#;

/// What the gateway offers a backend when it terminates compression.
const GATEWAY_OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits";

struct Setup {
    gw: TestPlatform,
    backend: Backend,
    /// The client URL with its API key.
    url: String,
}

/// The contract in front of `backend` with `settings` applied, deployed to development.
async fn setup(backend: Backend, settings: Value) -> anyhow::Result<Setup> {
    let gw = TestPlatform::start().await?;
    gw.client
        .post(
            "/apis/import",
            &json!({ "contract": CONTRACT, "target": backend.url }),
        )
        .await?;
    let updated = gw.client.patch("/apis/notes", &settings).await?;
    if let Some(c) = settings.get("compression") {
        assert_eq!(&updated["policies"]["compression"], c);
    }
    let url = gw.deploy("notes", "development", "external").await?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = gw.create_key("notes").await?;
    Ok(Setup {
        gw,
        backend,
        url: format!("{url}?apikey={key}"),
    })
}

#[tokio::test]
async fn passed_through_the_two_sides_negotiate_end_to_end() -> anyhow::Result<()> {
    // `auto` with no payload policy passes compression through.
    let s = setup(Backend::deflate_echo().await?, json!({})).await?;
    let offer = "permessage-deflate; client_max_window_bits, x-unknown-extension";
    let mut c = DeflateClient::connect(&s.url, Some(offer)).await?;
    // Only the permessage-deflate offer reaches the backend; its answer comes back as is.
    s.backend
        .wait_event("offer:permessage-deflate; client_max_window_bits")
        .await?;
    assert!(!s.backend.events().iter().any(|e| e.contains("x-unknown")));
    assert_eq!(
        c.extensions(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let text = r#"{"text":"hello, compressed world, hello, compressed world"}"#;
    c.send_compressed(text).await?;
    s.backend
        .wait_event(&format!("message:compressed:{text}"))
        .await?;
    let echoed = c.recv().await?;
    assert!(
        echoed.compressed,
        "the backend's compressed frame crossed as it was"
    );
    assert_eq!(echoed.payload, text.as_bytes());
    // Operators see what was negotiated, in the live list and the access log.
    let live = s.gw.client.get("/apis/notes/connections").await?;
    assert_eq!(live[0]["compression"], "pass-through", "{live}");

    // No offer, nothing negotiated: RSV1 is a protocol error.
    let mut c = DeflateClient::connect(&s.url, None).await?;
    assert_eq!(c.extensions(), None);
    s.backend.wait_event("offer:none").await?;
    c.send_compressed(text).await?;
    assert_eq!(
        c.recv_close().await?,
        (
            1002,
            "RSV1 set but permessage-deflate was not negotiated".to_string()
        )
    );
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn compression_off_strips_the_offer_and_refuses_rsv1() -> anyhow::Result<()> {
    let s = setup(
        Backend::deflate_echo().await?,
        json!({ "compression": "off" }),
    )
    .await?;
    let mut c = DeflateClient::connect(&s.url, Some("permessage-deflate")).await?;
    assert_eq!(c.extensions(), None);
    s.backend.wait_event("offer:none").await?;
    // RSV1 on a control frame is refused whatever was negotiated; here nothing was.
    c.send_frame(0x80 | RSV1 | 0x9, b"ping").await?;
    assert_eq!(c.recv_close().await?.0, 1002);
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn terminated_the_gateway_negotiates_each_side_and_recompresses() -> anyhow::Result<()> {
    let s = setup(
        Backend::deflate_echo().await?,
        json!({ "compression": "terminate", "limits": { "maxMessageBytes": 65536 } }),
    )
    .await?;
    let mut c = DeflateClient::connect(
        &s.url,
        Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits"),
    )
    .await?;
    // The client gets the gateway's answer, the backend the gateway's own offer.
    assert_eq!(
        c.extensions(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10")
    );
    s.backend
        .wait_event(&format!("offer:{GATEWAY_OFFER}"))
        .await?;
    let text = format!(r#"{{"text":"{}"}}"#, "terminated ".repeat(200));
    c.send_compressed(&text).await?;
    // Inflated by the gateway, deflated again for the backend.
    s.backend
        .wait_event(&format!("message:compressed:{text}"))
        .await?;
    let echoed = c.recv().await?;
    assert!(echoed.compressed);
    assert_eq!(echoed.payload, text.as_bytes());
    let live = s.gw.client.get("/apis/notes/connections").await?;
    assert_eq!(live[0]["compression"], "terminated", "{live}");
    // An uncompressed message stays uncompressed.
    c.send_frame(0x81, br#"{"text":"plain"}"#).await?;
    s.backend
        .wait_event(r#"message:plain:{"text":"plain"}"#)
        .await?;

    // A decompression bomb: 4 MiB of spaces in about 4 KiB, against a 64 KiB limit.
    let mut bomb = String::from(r#"{"text":""#);
    bomb.push_str(&" ".repeat(4 << 20));
    bomb.push_str(r#""}"#);
    c.send_compressed(&bomb).await?;
    assert_eq!(
        c.recv_close().await?,
        (1009, "message too big once inflated".to_string())
    );
    s.backend.wait_event("close:1001").await?;
    assert!(
        !s.backend.events().iter().any(|e| e.len() > 65536),
        "nothing of the bomb reached the backend"
    );
    // The access log tells how it ended, and that it was compressed.
    let log = s.gw.data_dir().join("access.log");
    let mut line = None;
    asyncgate_testkit::eventually("the access-log line of the closed connection", || {
        line = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_default())
            .find(|l| l["close_code"] == 1009);
        line.is_some()
    })
    .await?;
    let line = line.unwrap_or_default();
    assert_eq!(line["compression"], "terminated", "{line}");
    assert_eq!(line["close_reason"], "message too big once inflated");
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_contract_is_enforced_on_compressed_messages() -> anyhow::Result<()> {
    // `auto` terminates compression when a policy reads payloads.
    let s = setup(
        Backend::deflate_echo().await?,
        json!({ "messageValidation": "reject" }),
    )
    .await?;
    let mut c = DeflateClient::connect(&s.url, Some("permessage-deflate")).await?;
    assert_eq!(
        c.extensions(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    s.backend
        .wait_event(&format!("offer:{GATEWAY_OFFER}"))
        .await?;
    c.send_compressed(r#"{"text":"valid"}"#).await?;
    assert_eq!(c.recv().await?.payload, br#"{"text":"valid"}"#);
    c.send_compressed(r#"{"text":5}"#).await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1008, "{reason}");
    assert!(
        reason.contains("no message of the contract matches"),
        "{reason}"
    );
    assert!(!s
        .backend
        .events()
        .iter()
        .any(|e| e.contains(r#"{"text":5}"#)));

    // Pass-through cannot go with a policy that reads payloads: refused, nothing changed.
    let err =
        s.gw.client
            .patch("/apis/notes", &json!({ "compression": "pass-through" }))
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("400"), "{err}");
    assert!(err.contains("relays compressed messages unread"), "{err}");
    let api = s.gw.client.get("/apis/notes").await?;
    assert_eq!(api["policies"]["compression"], "auto");
    s.gw.shutdown().await;
    Ok(())
}
