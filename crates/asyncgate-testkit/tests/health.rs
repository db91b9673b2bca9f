//! Health for load balancers: `/healthz` while the process answers, `/readyz` while the
//! store answers and the gateway serves the newest snapshot, falling to 503 (naming the
//! store) when the store goes away.

use asyncgate_testkit::TestPlatform;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn readiness_follows_the_store_and_the_gateways_snapshot() -> anyhow::Result<()> {
    let p = TestPlatform::start().await?;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", p.management())).send();

    let live = get("/healthz").await?;
    assert_eq!(live.status(), StatusCode::OK);
    let ready = get("/readyz").await?;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await?;
    assert_eq!(body["ready"], true);
    assert_eq!(body["store"], "ok");
    assert_eq!(body["gatewayApplied"], body["snapshot"], "{body}");

    // A deploy publishes a new snapshot; readiness reports the gateway serving it.
    let before = body["snapshot"].as_u64().unwrap_or(0);
    p.deploy_sample("ws://127.0.0.1:9").await?;
    let body: Value = get("/readyz").await?.json().await?;
    assert!(body["snapshot"].as_u64().unwrap_or(0) > before, "{body}");
    assert_eq!(body["gatewayApplied"], body["snapshot"], "{body}");

    // The store goes away: not ready, and why; the process still answers.
    p.platform.store().close().await;
    let ready = get("/readyz").await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await?;
    assert_eq!(body["ready"], false);
    assert!(
        body["store"]
            .as_str()
            .unwrap_or("")
            .starts_with("unreachable"),
        "{body}"
    );
    assert_eq!(get("/healthz").await?.status(), StatusCode::OK);
    Ok(())
}
