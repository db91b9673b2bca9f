//! A slow reader holds back a fast sender: the gateway stops reading from the fast side
//! instead of buffering, in both directions. (Alone in its test binary so that the
//! process's memory reflects this test only.)

use asyncgate_testkit::{resident_bytes, Backend, TestPlatform, WsClient};
use futures_util::SinkExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_the_backend_and_memory_stays_bounded(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    c.recv_json().await?;
    let before = resident_bytes();

    // The backend tries to send 512 MiB in 64 KiB messages; the client reads nothing.
    c.send_text("flood:8192:65536").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled_at = echo.flooded.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = echo.flooded.load(Ordering::Relaxed);
    let grown = resident_bytes().saturating_sub(before);
    // Socket buffers may still grow a little; the flood itself has stopped.
    assert!(
        later - stalled_at < MIB,
        "the backend's sends stopped: the gateway is not reading from it ({} KiB more in a second)",
        (later - stalled_at) >> 10
    );
    // What left the backend sits in kernel socket buffers (client, both gateway legs,
    // backend), not in the gateway.
    assert!(
        later < 64 * MIB,
        "only socket buffers' worth was sent: {} MiB",
        later / MIB
    );
    assert!(
        grown < 16 * MIB,
        "the process grew by {} MiB while {} MiB were held back",
        grown / MIB,
        (512 * MIB - later) / MIB
    );

    // Reading again lets the flood go on.
    for _ in 0..64 {
        c.next_message().await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        echo.flooded.load(Ordering::Relaxed) > later,
        "the backend resumed"
    );
    drop(c);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stops_reading_stalls_the_client() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (url, key) = gw.deploy_sample(&echo.url).await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    c.recv_json().await?;
    c.send_text("silent").await?; // the backend stops reading
    let payload = "c".repeat(64 * 1024);
    let mut sent = 0u64;
    loop {
        match tokio::time::timeout(
            Duration::from_secs(1),
            c.ws.send(Message::text(payload.clone())),
        )
        .await
        {
            Ok(Ok(())) => sent += payload.len() as u64,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => break, // the send blocked: backpressure reached the client
        }
        assert!(
            sent < 256 * MIB,
            "the client could send {} MiB into a backend that reads nothing",
            sent / MIB
        );
    }
    eprintln!("client flood stalled after {} KiB", sent >> 10);
    assert!(sent < 64 * MIB, "stalled after {} MiB", sent / MIB);
    gw.shutdown().await;
    Ok(())
}
