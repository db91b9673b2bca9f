//! A slow reader holds back a fast sender: the gateway stops reading from the fast side
//! instead of buffering, in both directions. (Alone in its test binary so that the
//! process's memory reflects this test only.)

use asyncgate_testkit::{
    eventually, resident_bytes, stopped_growing, Backend, TestPlatform, WsClient,
};
use futures_util::SinkExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    // The backend's sends stop: the gateway is not reading from it.
    let later = stopped_growing("the backend's flood", || {
        echo.flooded.load(Ordering::Relaxed)
    })
    .await?;
    let grown = resident_bytes().saturating_sub(before);
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
    eventually("the backend to resume", || {
        echo.flooded.load(Ordering::Relaxed) > later
    })
    .await?;
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
                                  // The client sends as fast as the gateway takes its frames, until that stops.
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let sent = sent.clone();
        let payload = "c".repeat(64 * 1024);
        tokio::spawn(async move {
            while sent.load(Ordering::Relaxed) < 256 * MIB {
                c.ws.send(Message::text(payload.clone())).await?;
                sent.fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(c)
        })
    };
    let sent = stopped_growing("the client's flood", || sent.load(Ordering::Relaxed)).await?;
    eprintln!("client flood stalled after {} KiB", sent >> 10);
    assert!(sent < 64 * MIB, "stalled after {} MiB", sent / MIB);
    assert!(!flood.is_finished(), "the client's sends are held back");
    flood.abort();
    gw.shutdown().await;
    Ok(())
}
