//! Gateway nodes as the management API sees them: node tokens (shown once, one
//! environment each, revocable) and the sync call a node makes (its environment's
//! snapshot when the version differs, 204 when nothing changed within the wait, each
//! report recorded in the node list). The nodes themselves run in
//! `crates/asyncgate/tests/cluster.rs`.

use asyncgate_testkit::{Backend, TestPlatform};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn sync(
    p: &TestPlatform,
    token: &str,
    environment: &str,
    applied: u64,
) -> anyhow::Result<(StatusCode, Value)> {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/nodes/sync?wait=0", p.management()))
        .bearer_auth(token)
        .json(
            &json!({"id": "node-1", "environment": environment, "hostname": "h1",
            "appliedVersion": applied, "connections": 0, "state": "serving",
            "listeners": {"external": "ws://10.0.0.1:443"}}),
        )
        .send()
        .await?;
    let status = res.status();
    let body = if status == StatusCode::NO_CONTENT {
        Value::Null
    } else {
        res.json().await?
    };
    Ok((status, body))
}

#[tokio::test]
async fn a_node_gets_its_environments_snapshot_and_is_listed() -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let p = TestPlatform::start().await?;
    p.deploy_sample(&chat.url).await?;
    p.client
        .post(
            "/apis/chat-api/promote",
            &json!({"from": "development", "to": "production"}),
        )
        .await?;
    let created = p
        .client
        .post(
            "/nodes/tokens",
            &json!({"environment": "production", "name": "edge"}),
        )
        .await?;
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("agn_"));
    // The token is shown once: listings carry its hint only.
    let tokens = p.client.get("/nodes/tokens").await?;
    assert!(!tokens.to_string().contains(&token), "{tokens}");
    assert_eq!(tokens[0]["environment"], "production");
    // No such environment: a clear 400 that names the ones there are.
    let bad = p
        .client
        .post("/nodes/tokens", &json!({"environment": "staging"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("400") && bad.contains("development, production"),
        "{bad}"
    );

    // The snapshot of production only, versioned.
    let (status, body) = sync(&p, &token, "production", 0).await?;
    assert_eq!(status, StatusCode::OK);
    let version = body["version"].as_u64().unwrap();
    assert!(version > 0);
    let apis = body["snapshot"]["apis"].as_array().unwrap();
    assert_eq!(apis.len(), 1);
    let envs: Vec<&str> = apis[0]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["production"]);
    // Nothing new for a node at the current version.
    assert_eq!(
        sync(&p, &token, "production", version).await?.0,
        StatusCode::NO_CONTENT
    );
    // A change raises the version.
    p.create_key("chat-api").await?;
    let (status, body) = sync(&p, &token, "production", version).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body["version"].as_u64().unwrap() > version);

    // Listed with what it reported.
    let nodes = p.client.get("/nodes").await?;
    let node = &nodes[0];
    assert_eq!(node["id"], "node-1");
    assert_eq!(node["hostname"], "h1");
    assert_eq!(node["listeners"]["external"], "ws://10.0.0.1:443");
    assert_eq!(
        node["upToDate"], false,
        "it applied {version} last it said: {node}"
    );

    // Another environment's token, a wrong one, a revoked one: refused.
    assert_eq!(
        sync(&p, &token, "development", 0).await?.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        sync(&p, "agn_nope", "production", 0).await?.0,
        StatusCode::UNAUTHORIZED
    );
    let id = created["id"].as_str().unwrap();
    p.client.delete(&format!("/nodes/tokens/{id}")).await?;
    assert_eq!(
        sync(&p, &token, "production", 0).await?.0,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}
