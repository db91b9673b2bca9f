//! Opening and closing 10,000 connections through the gateway leaves no tasks, file
//! descriptors or memory behind. (Alone in its test binary so that the process's
//! resources reflect this test only.)

use asyncgate_testkit::{open_fds, resident_bytes, Backend, TestPlatform, WsClient};
use std::time::Duration;

const TOTAL: usize = 10_000;
const AT_ONCE: usize = 100;

async fn churn(url: &str, key: &str, count: usize) -> anyhow::Result<()> {
    for _ in 0..count / AT_ONCE {
        let mut batch = Vec::with_capacity(AT_ONCE);
        for _ in 0..AT_ONCE {
            let (url, key) = (url.to_string(), key.to_string());
            batch.push(tokio::spawn(async move {
                let mut c = WsClient::with_key(&url, &key).await?;
                c.recv_json().await?;
                c.send_text("ping").await?;
                anyhow::ensure!(c.recv_text().await? == "ping");
                c.close().await;
                Ok(())
            }));
        }
        for t in batch {
            t.await??;
        }
    }
    Ok(())
}

/// Wait until `f` returns a value at most `limit` (the event: everything was released),
/// or give up after the test kit's patience and return the last value.
async fn settle(limit: usize, f: impl Fn() -> usize) -> usize {
    let _ = asyncgate_testkit::eventually("resources to be released", || f() <= limit).await;
    f()
}

/// The value of `f` once two samples 100 ms apart agree.
async fn steady(f: impl Fn() -> usize) -> usize {
    let mut last = f();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = f();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_leave_nothing_behind() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let api = gw.import_sample(&echo.url).await?;
    let url = gw.deploy("chat-api", "development", "external").await?["url"]
        .as_str()
        .unwrap()
        .to_string();
    let key = gw.create_key("chat-api").await?;
    let metrics = tokio::runtime::Handle::current().metrics();
    let gateway = gw.platform.gateway().clone();

    // Warm up (allocator arenas, lazily created state), then take the baseline. The
    // allocator keeps some freed memory, which moves resident size by some MiB from run
    // to run; a leak of 2.5 KB per connection would exceed the bound below.
    churn(&url, &key, 2_000).await?;
    let tasks_before = steady(|| metrics.num_alive_tasks()).await;
    let fds_before = open_fds();
    let rss_before = resident_bytes();

    churn(&url, &key, TOTAL).await?;

    let tasks_after = settle(tasks_before, || metrics.num_alive_tasks()).await;
    let fds_after = settle(fds_before, open_fds).await;
    // Connection tasks run on the gateway's own threads: every one has ended.
    let connection_tasks = settle(0, || gateway.connection_tasks()).await;
    let rss_after = resident_bytes();
    eprintln!(
        "after {TOTAL} connections: tasks {tasks_before} -> {tasks_after}, fds {fds_before} -> {fds_after}, resident {} -> {} KiB",
        rss_before >> 10,
        rss_after >> 10
    );
    assert_eq!(tasks_after, tasks_before, "tasks left behind");
    assert_eq!(connection_tasks, 0, "connection tasks left behind");
    assert_eq!(fds_after, fds_before, "file descriptors left behind");
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 32 << 20,
        "resident memory grew by {} KiB",
        grown >> 10
    );
    let api_id = api["id"].as_str().unwrap();
    assert_eq!(gw.platform.gateway().live().count("development", api_id), 0);
    gw.shutdown().await;
    Ok(())
}
