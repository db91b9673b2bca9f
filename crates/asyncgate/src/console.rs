//! The test console in a terminal: connect through the gateway, send each input line as
//! a text message, print every received message with a timestamp.

use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub struct ConsoleOptions {
    pub url: String,
    /// Extra request headers, e.g. `("api-key", "...")`.
    pub headers: Vec<(String, String)>,
    /// After the end of input, keep printing until nothing arrived for this long.
    pub linger: Duration,
    /// Print one JSON object per event instead of text lines.
    pub json: bool,
}

/// How the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub close_code: Option<u16>,
    pub close_reason: String,
    pub by_server: bool,
    pub received: usize,
}

fn timestamp() -> String {
    let fmt = time::macros::format_description!("[hour]:[minute]:[second].[subsecond digits:3]");
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default()
}

async fn emit<W: AsyncWrite + Unpin>(
    out: &mut W,
    json: bool,
    event: &str,
    text: &str,
) -> anyhow::Result<()> {
    let line = if json {
        serde_json::json!({ "at": timestamp(), "event": event, "data": text }).to_string()
    } else {
        let arrow = match event {
            "received" => "<",
            "sent" => ">",
            _ => "*",
        };
        format!("[{}] {arrow} {text}", timestamp())
    };
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await?;
    out.flush().await?;
    Ok(())
}

/// Run a console session until input ends (then linger and close) or the server closes.
pub async fn run<R, W>(options: &ConsoleOptions, input: R, out: &mut W) -> anyhow::Result<Ended>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("{} is not a WebSocket URL", options.url))?;
    for (k, v) in &options.headers {
        request.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes())?,
            v.parse()
                .with_context(|| format!("bad value for header {k}"))?,
        );
    }
    let (mut ws, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(body);
            return Err(anyhow!(
                "the gateway refused the connection: HTTP {}: {message}",
                resp.status()
            ));
        }
        Err(e) => return Err(anyhow!("cannot connect to {}: {e}", options.url)),
    };
    emit(out, options.json, "connected", &options.url).await?;

    let mut lines = input.lines();
    let mut input_open = true;
    let mut received = 0usize;
    loop {
        let quiet = tokio::time::sleep(options.linger);
        tokio::select! {
            line = lines.next_line(), if input_open => match line? {
                Some(line) => {
                    ws.send(Message::text(line.clone())).await?;
                    emit(out, options.json, "sent", &line).await?;
                }
                None => input_open = false,
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    received += 1;
                    emit(out, options.json, "received", t.as_str()).await?;
                }
                Some(Ok(Message::Binary(b))) => {
                    received += 1;
                    emit(out, options.json, "received", &format!("(binary, {} bytes)", b.len())).await?;
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map(|f| (Some(u16::from(f.code)), f.reason.to_string())).unwrap_or((None, String::new()));
                    emit(out, options.json, "closed", &format!("by server: {} {reason}", code.map(|c| c.to_string()).unwrap_or_else(|| "no code".into()))).await?;
                    let _ = ws.close(None).await;
                    return Ok(Ended { close_code: code, close_reason: reason, by_server: true, received });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(anyhow!("connection lost: {e}")),
                None => return Err(anyhow!("connection lost without a close frame")),
            },
            _ = quiet, if !input_open => {
                let _ = ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "end of input".into() })).await;
                // Read until the server's close reply.
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(Ok(m)) = ws.next().await {
                        if let Message::Text(t) = m {
                            received += 1;
                            let _ = emit(out, options.json, "received", t.as_str()).await;
                        }
                    }
                }).await;
                emit(out, options.json, "closed", "end of input").await?;
                return Ok(Ended { close_code: Some(1000), close_reason: "end of input".into(), by_server: false, received });
            }
        }
    }
}
