//! The contract enforced on messages, over real sockets: valid and invalid messages each
//! way under `reject`, `drop` and `report`, messages allowed by any of a channel's
//! messages, fragmented messages judged whole, binary and non-JSON messages by the API's
//! rule, and a revision changing a schema while connections are live.

use asyncgate_testkit::{raw_frame, raw_upgrade, Backend, TestPlatform, WsClient};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// Clients send `Say` or `Ping`; they receive `Said` (text of at most 10 characters) or
/// the echo backend's greeting. `/quiet` sends nothing to the backend.
const CONTRACT: &str = r#"
asyncapi: 2.6.0
info: {title: Notes, version: 1.0.0}
channels:
  /:
    publish:
      message:
        oneOf:
          - name: Say
            payload: {$ref: '#/components/schemas/say'}
          - name: Ping
            payload: {type: object, required: [ping], properties: {ping: {type: integer}}}
    subscribe:
      message:
        oneOf:
          - name: Said
            payload: {type: object, required: [text], properties: {text: {type: string, maxLength: 10}}}
          - name: Hello
            payload: {type: object, required: [path, headers]}
  /quiet:
    subscribe:
      message: {name: Hello, payload: {type: object}}
components:
  schemas:
    say:
      type: object
      required: [text]
      properties:
        text: {$ref: '#/components/schemas/text'}
    text: {type: string}
"#;

struct Setup {
    gw: TestPlatform,
    echo: Backend,
    url: String,
    key: String,
}

/// The contract imported in front of the echo backend with `policies`, deployed to
/// development.
async fn setup(policies: Value) -> anyhow::Result<Setup> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    gw.client
        .post(
            "/apis/import",
            &json!({ "contract": CONTRACT, "target": echo.url }),
        )
        .await?;
    let updated = gw.client.patch("/apis/notes", &policies).await?;
    if let Some(mode) = policies.get("messageValidation") {
        assert_eq!(&updated["policies"]["messageValidation"], mode);
    }
    let url = gw.deploy("notes", "development", "external").await?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = gw.create_key("notes").await?;
    Ok(Setup { gw, echo, url, key })
}

/// A connection past the echo backend's greeting (which the contract allows).
async fn connected(s: &Setup, path: &str) -> anyhow::Result<WsClient> {
    let mut c = WsClient::with_key(&format!("{}{path}", s.url), &s.key).await?;
    c.recv_json().await?;
    Ok(c)
}

/// A masked frame from a client: `first` is FIN and opcode.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut out = vec![first, 0x80 | u8::try_from(payload.len()).expect("short")];
    out.extend(key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

#[tokio::test]
async fn reject_closes_the_sender_naming_the_channel_and_the_failing_pointer() -> anyhow::Result<()>
{
    let s = setup(json!({ "messageValidation": "reject" })).await?;
    let mut c = connected(&s, "").await?;
    // Either of the channel's messages passes, both ways (the schema's $refs resolved).
    for text in [r#"{"text":"hi"}"#, r#"{"text":"hey","extra":true}"#] {
        c.send_text(text).await?;
        assert_eq!(c.recv_text().await?, text);
    }
    // A message matching neither: the client is closed with 1008, the backend gets 1001.
    c.send_text(r#"{"text":5}"#).await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(code, 1008);
    assert_eq!(reason, "/: no message of the contract matches (at /text)");
    assert_eq!(
        s.echo.wait_event("close:").await?,
        "close:1001:client went away"
    );
    assert_eq!(
        s.gw.platform
            .gateway()
            .refused_messages("development", &api_id(&s).await?),
        1
    );

    // From the backend: `Ping` is a client message, not one clients receive; echoed
    // back, the backend is closed with 1008 and the client gets 1001.
    let mut c = connected(&s, "").await?;
    c.send_text(r#"{"ping":1}"#).await?;
    let (code, _) = c.recv_close().await?;
    assert_eq!(code, 1001);
    let closed = s.echo.wait_event("close:1008:").await?;
    assert!(
        closed.starts_with("close:1008:/: no message of the contract matches"),
        "{closed}"
    );

    // Text that is not JSON passes by default ("unjudged": pass); a channel whose client
    // sends nothing refuses every message.
    let mut c = connected(&s, "").await?;
    c.send_text("plain words").await?;
    assert_eq!(c.recv_text().await?, "plain words");
    let mut quiet = connected(&s, "/quiet").await?;
    quiet.send_text(r#"{"text":"hi"}"#).await?;
    assert_eq!(
        quiet.recv_close().await?,
        (1008, "/quiet takes no messages from the client".to_string())
    );
    s.gw.shutdown().await;
    Ok(())
}

async fn api_id(s: &Setup) -> anyhow::Result<String> {
    Ok(s.gw.client.get("/apis/notes").await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[tokio::test]
async fn drop_keeps_the_connection_and_tells_the_sender_report_forwards_and_counts(
) -> anyhow::Result<()> {
    let s = setup(json!({ "messageValidation": "drop" })).await?;
    let mut c = connected(&s, "").await?;
    c.send_text(r#"{"text":7}"#).await?;
    let notice = c.recv_json().await?;
    assert_eq!(notice["error"], "message_refused");
    assert_eq!(notice["channel"], "/");
    assert_eq!(notice["pointer"], "/text");
    // Not forwarded: the next message's echo is the next thing received.
    c.send_text(r#"{"text":"next"}"#).await?;
    assert_eq!(c.recv_text().await?, r#"{"text":"next"}"#);

    // Report: forwarded both ways, counted.
    let id = api_id(&s).await?;
    s.gw.client
        .patch("/apis/notes", &json!({ "messageValidation": "report" }))
        .await?;
    s.gw.deploy("notes", "development", "external").await?;
    let mut c = connected(&s, "").await?;
    c.send_text(r#"{"text":"far too long for Said"}"#).await?;
    assert_eq!(c.recv_text().await?, r#"{"text":"far too long for Said"}"#);
    let gateway = s.gw.platform.gateway().clone();
    asyncgate_testkit::eventually("the refusal counted", || {
        gateway.refused_messages("development", &id) == 1
    })
    .await?;
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn fragmented_messages_are_judged_whole_and_binary_follows_the_apis_rule(
) -> anyhow::Result<()> {
    let s = setup(json!({ "messageValidation": "reject", "unjudgedMessages": "fail" })).await?;
    // A valid message in three fragments, a ping between them.
    let mut tcp = raw_upgrade(&s.url, &[("api-key", &s.key)]).await?;
    raw_frame(&mut tcp).await?; // the greeting
    let mut wire = masked(0x01, br#"{"te"#);
    wire.extend(masked(0x89, b"ping"));
    wire.extend(masked(0x00, br#"xt":"fr"#));
    wire.extend(masked(0x80, br#"agments"}"#));
    tcp.write_all(&wire).await?;
    let (first, payload) = raw_frame(&mut tcp).await?;
    assert_eq!(
        (first, payload.as_slice()),
        (0x8A, b"ping".as_slice()),
        "the pong"
    );
    let (first, payload) = raw_frame(&mut tcp).await?;
    assert_eq!(first, 0x81);
    assert_eq!(payload, br#"{"text":"fragments"}"#);
    // The same cut so that the whole is invalid: refused, though each piece is harmless.
    let mut wire = masked(0x01, br#"{"te"#);
    wire.extend(masked(0x80, br#"xt":[]}"#));
    tcp.write_all(&wire).await?;
    let (first, payload) = raw_frame(&mut tcp).await?;
    assert_eq!(first, 0x88);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1008);

    // With "unjudged": fail, binary messages and text that is not JSON are refused.
    let mut c = connected(&s, "").await?;
    c.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2,
    ]))
    .await?;
    assert_eq!(
        c.recv_close().await?,
        (1008, "/: binary messages are not allowed".to_string())
    );
    let mut c = connected(&s, "").await?;
    c.send_text("plain words").await?;
    assert_eq!(
        c.recv_close().await?,
        (1007, "/: the message is not JSON".to_string())
    );
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_new_revision_s_schema_applies_to_new_connections_and_old_ones_keep_theirs(
) -> anyhow::Result<()> {
    let s = setup(json!({ "messageValidation": "reject" })).await?;
    let mut old = connected(&s, "").await?;
    // Revision 2 allows pings of strings only.
    let stricter = CONTRACT.replace(
        "properties: {ping: {type: integer}}",
        "properties: {ping: {type: string}}",
    );
    s.gw.client
        .put("/apis/notes/contract", &json!({ "contract": stricter }))
        .await?;
    assert_eq!(
        s.gw.deploy("notes", "development", "external").await?["revision"],
        2
    );
    // The old connection keeps revision 1's rules: an integer ping passes upstream.
    // (Its echo then fails the down direction, as under revision 1.)
    old.send_text(r#"{"text":"still"}"#).await?;
    assert_eq!(old.recv_text().await?, r#"{"text":"still"}"#);
    let mut new = connected(&s, "").await?;
    new.send_text(r#"{"ping":1}"#).await?;
    let (code, reason) = new.recv_close().await?;
    assert_eq!(
        (code, reason.as_str()),
        (1008, "/: no message of the contract matches (at /ping)")
    );
    old.send_text(r#"{"ping":1}"#).await?;
    let (code, _) = old.recv_close().await?;
    assert_eq!(
        code, 1001,
        "passed up under revision 1, refused coming back"
    );
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_apis_per_connection_rates_close_or_drop_what_goes_over() -> anyhow::Result<()> {
    // One message a second, both directions counted: the echo of the first already goes
    // over, and the client is closed with 1008 (the backend gets 1001).
    let s = setup(json!({ "limits": { "maxMessagesPerSecond": 1 } })).await?;
    let mut c = WsClient::with_key(&s.url, &s.key).await?;
    // Messages sent together: however slow the machine, two fall within one second.
    for _ in 0..20 {
        if c.send_text(r#"{"text":"hi"}"#).await.is_err() {
            break; // already closed
        }
    }
    assert_eq!(
        c.recv_close().await?,
        (1008, "over the API's message or byte rate".to_string())
    );
    assert_eq!(
        s.echo.wait_event("close:").await?,
        "close:1001:client went away"
    );
    s.gw.shutdown().await;

    // Dropping: a connection allowed 30 bytes a second sends 10 messages of 10 bytes at
    // once; what goes over is not forwarded, and the connection stays open.
    let s =
        setup(json!({ "limits": { "maxBytesPerSecond": 30, "rateLimitAction": "drop" } })).await?;
    let mut c = WsClient::connect(&format!("{}/quiet", s.url), &[("api-key", &s.key)]).await?;
    for i in 0..10 {
        c.send_text(&format!("message {i}")).await?;
    }
    c.send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await?;
    let mut received = 0;
    loop {
        match c.next_message().await? {
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => received += 1,
        }
    }
    // The greeting (a few hundred bytes) goes over on its own; at most a few echoes come
    // back within the budget, never all ten.
    assert!(received < 10, "{received} messages came back");
    s.gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn channels_sharing_an_address_are_validated_together() -> anyhow::Result<()> {
    // AsyncAPI 3: a request channel and its reply channel, both at `/`.
    let contract = r#"
asyncapi: 3.0.0
info: {title: Pings, version: 1.0.0}
channels:
  ping:
    address: /
    messages:
      ping: {payload: {type: object, required: [event], properties: {event: {const: ping}}}}
  pong:
    address: /
    messages:
      pong: {payload: {type: object}}
operations:
  receivePing:
    action: receive
    channel: {$ref: '#/channels/ping'}
    reply: {channel: {$ref: '#/channels/pong'}}
  sendPong:
    action: send
    channel: {$ref: '#/channels/pong'}
"#;
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    gw.client
        .post(
            "/apis/import",
            &json!({ "contract": contract, "target": echo.url, "identifier": "pings" }),
        )
        .await?;
    gw.client
        .patch("/apis/pings", &json!({ "messageValidation": "reject" }))
        .await?;
    let url = gw.deploy("pings", "development", "external").await?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = gw.create_key("pings").await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    c.recv_json().await?; // the greeting is a pong: an object
    c.send_text(r#"{"event":"ping"}"#).await?;
    assert_eq!(c.recv_text().await?, r#"{"event":"ping"}"#);
    c.send_text(r#"{"event":"pong"}"#).await?;
    let (code, reason) = c.recv_close().await?;
    assert_eq!(
        (code, reason.as_str()),
        (1008, "/: no message of the contract matches (at /event)")
    );
    gw.shutdown().await;
    Ok(())
}
