//! Revisions, environments, lifecycle states and versions, over real sockets: rollback
//! and promotion with per-environment values while live connections keep their backend,
//! the history with who did what, promotion order, what each lifecycle state does at the
//! gateway and in the portal, and major-version routing with subscriptions spanning minor
//! versions.

use asyncgate::client::Client;
use asyncgate::config::EnvironmentListen;
use asyncgate_testkit::{Backend, TestPlatform, WsClient};
use serde_json::{json, Value};

/// The backend a fresh connection reached: the echo backend's first message names the
/// `Host` it was dialled at.
async fn backend_of(c: &mut WsClient) -> anyhow::Result<String> {
    let seen = c.recv_json().await?;
    Ok(seen["headers"]["host"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn host(url: &str) -> &str {
    url.trim_start_matches("ws://")
}

/// A connection with `key`, past the echo backend's first message.
async fn connected(url: &str, key: &str) -> anyhow::Result<WsClient> {
    let mut c = WsClient::with_key(url, key).await?;
    backend_of(&mut c).await?;
    Ok(c)
}

/// A round trip through an open connection to the echo backend.
async fn echoes(c: &mut WsClient, text: &str) -> anyhow::Result<()> {
    c.send_text(text).await?;
    assert_eq!(c.recv_text().await?, text);
    Ok(())
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_string()
}

/// The error of a refused management call, as text (`HTTP 409 ...`).
async fn refusal(r: impl std::future::Future<Output = anyhow::Result<Value>>) -> String {
    match r.await {
        Ok(v) => panic!("expected a refusal, got {v}"),
        Err(e) => e.to_string(),
    }
}

/// A user of the default organization with `role`, signed in.
async fn user(gw: &TestPlatform, email: &str, role: &str) -> anyhow::Result<Client> {
    let password = "correct horse battery";
    gw.client
        .post(
            "/users",
            &json!({ "email": email, "password": password, "role": role }),
        )
        .await?;
    let session = Client::new(gw.management(), "")
        .post("/login", &json!({ "email": email, "password": password }))
        .await?;
    Ok(Client::new(gw.management(), &text(&session, "token")))
}

#[tokio::test]
async fn production_runs_an_older_revision_is_promoted_and_rolled_back_with_its_own_target(
) -> anyhow::Result<()> {
    let (dev_backend, prod_backend, other_backend) = (
        Backend::echo().await?,
        Backend::echo().await?,
        Backend::echo().await?,
    );
    let gw = TestPlatform::start().await?;
    let pat = user(&gw, "pat@example.org", "publisher").await?;
    gw.import_sample(&dev_backend.url).await?;
    let key = gw.create_key("chat-api").await?;
    // Another API, live in production throughout.
    gw.client
        .post(
            "/apis/import",
            &json!({ "contract": asyncgate_testkit::SAMPLE_CONTRACT, "target": other_backend.url,
                     "identifier": "other-chat", "basePath": "/other" }),
        )
        .await?;
    let other_key = gw.create_key("other-chat").await?;

    // Revision 1, then 2, in development; 2 promoted to production.
    gw.deploy("chat-api", "development", "external").await?;
    gw.client
        .patch("/apis/chat-api", &json!({ "description": "second" }))
        .await?;
    assert_eq!(
        gw.deploy("chat-api", "development", "external").await?["revision"],
        2
    );
    let promoted = gw
        .client
        .post(
            "/apis/chat-api/promote",
            &json!({ "from": "development", "to": "production" }),
        )
        .await?;
    assert_eq!(promoted["revision"], 2);
    assert_eq!(
        promoted["target"],
        dev_backend.url.as_str(),
        "the source's values"
    );
    let prod_url = text(&promoted, "url");
    gw.deploy("other-chat", "production", "external").await?;
    let other_url = format!("{}/other", gw.listener("production", true));

    // Revision 3 in development, with a lower connection limit; production still runs 2.
    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "limits": { "maxConnections": 50 } }),
        )
        .await?;
    assert_eq!(
        gw.deploy("chat-api", "development", "external").await?["revision"],
        3
    );
    let shown = gw.client.get("/apis/chat-api").await?;
    let runs = |env: &str| {
        shown["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["environment"] == env)
            .map(|d| d["revision"].clone())
    };
    assert_eq!(
        (runs("development"), runs("production")),
        (Some(json!(3)), Some(json!(2)))
    );

    // Live production connections: to this API (on revision 2's backend) and another API.
    let mut old = WsClient::with_key(&prod_url, &key).await?;
    assert_eq!(backend_of(&mut old).await?, host(&dev_backend.url));
    let mut other = WsClient::with_key(&other_url, &other_key).await?;
    assert_eq!(backend_of(&mut other).await?, host(&other_backend.url));

    // Skipping ahead is refused (production is last); then promote 3 with production's
    // own backend.
    let e = refusal(gw.client.post(
        "/apis/chat-api/promote",
        &json!({ "from": "production", "to": "development" }),
    ))
    .await;
    assert!(
        e.starts_with("HTTP 409") && e.contains("last environment"),
        "{e}"
    );
    let promoted = gw
        .client
        .post(
            "/apis/chat-api/promote",
            &json!({ "from": "development", "to": "production", "target": prod_backend.url }),
        )
        .await?;
    assert_eq!(promoted["revision"], 3);
    assert_eq!(promoted["target"], prod_backend.url.as_str());
    assert_eq!(promoted["ownValues"], json!(["target"]));
    assert_eq!(promoted["limits"]["maxConnections"], 50);
    let mut new = WsClient::with_key(&prod_url, &key).await?;
    assert_eq!(backend_of(&mut new).await?, host(&prod_backend.url));
    // Live connections were not dropped: the old one keeps its backend, the other API too.
    echoes(&mut old, "still on revision 2's backend").await?;
    echoes(&mut other, "other API untouched").await?;

    // Pat rolls production back to revision 2; it keeps its own backend.
    let rolled = pat
        .post(
            "/apis/chat-api/deployments",
            &json!({ "environment": "production", "accessMode": "external", "revision": 2 }),
        )
        .await?;
    assert_eq!(rolled["revision"], 2);
    assert_eq!(rolled["target"], prod_backend.url.as_str());
    assert_eq!(rolled["deployedBy"], "pat@example.org");
    assert_eq!(
        rolled["limits"]["maxConnections"], 10_000,
        "revision 2's limits"
    );
    echoes(&mut old, "rollback keeps live connections").await?;
    echoes(&mut new, "and the newer ones").await?;
    let e = refusal(pat.post(
        "/apis/chat-api/deployments",
        &json!({ "environment": "production", "accessMode": "external", "revision": 9 }),
    ))
    .await;
    assert!(
        e.starts_with("HTTP 404") && e.contains("revisions are 1 to 3"),
        "{e}"
    );

    // The history: three steps in production, with who, access mode and what changed.
    let history = gw
        .client
        .get("/apis/chat-api/history?env=production")
        .await?;
    let steps: Vec<(String, Value, Value, String)> = history
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                text(h, "action"),
                h["previousRevision"].clone(),
                h["revision"].clone(),
                text(h, "who"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "promote".to_string(),
                Value::Null,
                json!(2),
                "operator".to_string()
            ),
            (
                "promote".to_string(),
                json!(2),
                json!(3),
                "operator".to_string()
            ),
            (
                "rollback".to_string(),
                json!(3),
                json!(2),
                "pat@example.org".to_string()
            ),
        ]
    );
    let changed = |i: usize| -> Vec<String> {
        history[i]["changes"]["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| text(v, "field"))
            .collect()
    };
    assert_eq!(changed(1), ["limits.maxConnections", "target"]);
    assert_eq!(changed(2), ["limits.maxConnections"]);
    assert!(history
        .as_array()
        .into_iter()
        .flatten()
        .all(|h| h["accessMode"] == "external" && h["when"].is_string()));
    // Revision 1 → 2 changed the description; 2 → 3 the limit.
    let diff = gw.client.get("/apis/chat-api/diff?from=2&to=3").await?;
    assert_eq!(diff["values"][0]["field"], "limits.maxConnections");
    assert_eq!(diff["values"][0]["from"], 10_000);
    assert_eq!(diff["values"][0]["to"], 50);
    let revisions = gw.client.get("/apis/chat-api/revisions").await?;
    assert_eq!(revisions.as_array().map(Vec::len), Some(3));
    assert_eq!(revisions[1]["deployedTo"], json!(["production"]));

    // Stopping production closes its live connections with 1001; the other API stays.
    gw.client
        .delete("/apis/chat-api/deployments/production")
        .await?;
    assert_eq!(old.recv_close().await?.0, 1001);
    assert_eq!(new.recv_close().await?.0, 1001);
    echoes(&mut other, "other API still untouched").await?;
    let stopped = gw
        .client
        .get("/apis/chat-api/history?env=production")
        .await?;
    assert_eq!(stopped[3]["action"], "undeploy");
    assert_eq!(stopped[3]["previousRevision"], 2);
    assert!(stopped[3].get("revision").is_none());
    gw.shutdown().await;
    Ok(())
}

async fn promote(gw: &TestPlatform, from: &str, to: &str) -> anyhow::Result<Value> {
    gw.client
        .post("/apis/chat-api/promote", &json!({ "from": from, "to": to }))
        .await
}

/// Change the sample API's lifecycle state: `action` with the fields of `extra`.
async fn lifecycle(gw: &TestPlatform, action: &str, extra: Value) -> anyhow::Result<Value> {
    let mut body = json!({ "action": action });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    gw.client.post("/apis/chat-api/lifecycle", &body).await
}

/// Subscribe the application at `app_path` to the sample API.
async fn subscribe(gw: &TestPlatform, app_path: String) -> anyhow::Result<Value> {
    gw.client
        .post(
            &format!("{app_path}/subscriptions"),
            &json!({ "api": "chat-api" }),
        )
        .await
}

#[tokio::test]
async fn a_promotion_goes_only_to_the_next_environment_in_the_configured_order(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        let zero = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        c.environments.insert(
            1,
            EnvironmentListen {
                name: "staging".into(),
                external: zero,
                internal: zero,
                external_options: Default::default(),
                internal_options: Default::default(),
            },
        );
    })
    .await?;
    gw.import_sample(&echo.url).await?;
    gw.deploy("chat-api", "development", "internal").await?;
    let e = refusal(promote(&gw, "development", "production")).await;
    assert!(
        e.starts_with("HTTP 409") && e.contains("next environment in order, staging"),
        "{e}"
    );
    let staged = promote(&gw, "development", "staging").await?;
    assert_eq!(staged["accessMode"], "internal", "as in the source");
    promote(&gw, "staging", "production").await?;
    let envs = gw.client.get("/environments").await?;
    let names: Vec<String> = envs
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| text(e, "name"))
        .collect();
    assert_eq!(names, ["development", "staging", "production"]);
    gw.shutdown().await;
    Ok(())
}

/// Whether the portal's catalogue lists the API, and how.
async fn in_catalogue(gw: &TestPlatform, api_id: &str) -> anyhow::Result<Option<Value>> {
    let all = Client::new(gw.management(), "").get("/portal/apis").await?;
    Ok(all
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == api_id)
        .cloned())
}

#[tokio::test]
async fn each_lifecycle_state_means_the_same_at_the_gateway_and_in_the_portal() -> anyhow::Result<()>
{
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let api = gw.import_sample(&echo.url).await?;
    let api_id = text(&api, "id");
    let url = text(
        &gw.deploy("chat-api", "development", "external").await?,
        "url",
    );
    let app = gw
        .client
        .post("/applications", &json!({ "name": "App" }))
        .await?;
    let app_path = format!("/applications/{}", text(&app, "id"));

    // Created: not in the catalogue; refused transitions name the allowed ones.
    assert!(in_catalogue(&gw, &api_id).await?.is_none());
    let anonymous = Client::new(gw.management(), "");
    let e = refusal(anonymous.get(&format!("/portal/apis/{api_id}"))).await;
    assert!(e.starts_with("HTTP 404"), "{e}");
    for action in ["retire", "block", "deprecate", "demote-to-created"] {
        let e = refusal(lifecycle(&gw, action, json!({}))).await;
        assert!(
            e.starts_with("HTTP 409") && e.contains("allowed from Created: publish, pre-release"),
            "{action}: {e}"
        );
    }

    // Pre-Released: in the catalogue marked so, not subscribable.
    lifecycle(&gw, "pre-release", json!({})).await?;
    let listed = in_catalogue(&gw, &api_id).await?.expect("listed");
    assert_eq!(
        (listed["lifecycle"].clone(), listed["subscribable"].clone()),
        (json!("Pre-Released"), json!(false))
    );
    let e = refusal(subscribe(&gw, app_path.clone())).await;
    assert!(
        e.starts_with("HTTP 409") && e.contains("Pre-Released"),
        "{e}"
    );

    // Published (with a display name): subscribable; the application connects.
    lifecycle(
        &gw,
        "publish",
        json!({ "displayName": "Chat", "note": "GA" }),
    )
    .await?;
    let listed = in_catalogue(&gw, &api_id).await?.expect("listed");
    assert_eq!(
        (listed["name"].clone(), listed["subscribable"].clone()),
        (json!("Chat"), json!(true))
    );
    subscribe(&gw, app_path.clone()).await?;
    let key = gw
        .client
        .post(
            &format!("{app_path}/keys"),
            &json!({ "environment": "development" }),
        )
        .await?;
    let key = text(&key, "key");
    let mut live = connected(&url, &key).await?;
    echoes(&mut live, "published").await?;

    // Blocked: new handshakes 503, live connections closed, out of the catalogue;
    // publishing again restores service.
    lifecycle(&gw, "block", json!({ "note": "incident 42" })).await?;
    let refused = WsClient::refused(&url, &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(live.recv_close().await?, (1001, "API blocked".to_string()));
    assert!(in_catalogue(&gw, &api_id).await?.is_none());
    lifecycle(&gw, "publish", json!({})).await?;
    let mut live = connected(&url, &key).await?;
    echoes(&mut live, "restored").await?;

    // Deprecated: marked so, no new subscriptions, existing subscribers keep working.
    lifecycle(&gw, "deprecate", json!({})).await?;
    let listed = in_catalogue(&gw, &api_id).await?.expect("listed");
    assert_eq!(
        (listed["lifecycle"].clone(), listed["subscribable"].clone()),
        (json!("Deprecated"), json!(false))
    );
    let late = gw
        .client
        .post("/applications", &json!({ "name": "Late" }))
        .await?;
    let e = refusal(subscribe(
        &gw,
        format!("/applications/{}", text(&late, "id")),
    ))
    .await;
    assert!(e.starts_with("HTTP 409") && e.contains("Deprecated"), "{e}");
    echoes(&mut live, "deprecated still serves").await?;
    let mut again = connected(&url, &key).await?;
    echoes(&mut again, "new connection of an existing subscriber").await?;

    // Retired: undeployed everywhere, live connections closed with 1001, gone from the
    // catalogue, its subscriptions ended; final.
    lifecycle(&gw, "retire", json!({})).await?;
    assert_eq!(live.recv_close().await?, (1001, "API retired".to_string()));
    assert_eq!(again.recv_close().await?, (1001, "API retired".to_string()));
    assert_eq!(
        WsClient::refused(&url, &[("api-key", &key)]).await?.status,
        404
    );
    assert!(in_catalogue(&gw, &api_id).await?.is_none());
    let shown = gw.client.get("/apis/chat-api").await?;
    assert_eq!(shown["deployments"], json!([]));
    let app_now = gw.client.get(&app_path).await?;
    assert_eq!(app_now["subscriptions"], json!([]), "{app_now}");
    let e = refusal(lifecycle(&gw, "publish", json!({}))).await;
    assert!(e.contains("nothing (final state)"), "{e}");
    let history = gw.client.get("/apis/chat-api/history").await?;
    assert_eq!(
        history
            .as_array()
            .and_then(|h| h.last())
            .map(|h| h["action"].clone()),
        Some(json!("retire"))
    );

    // The lifecycle history: from, to, who, when, note.
    let steps = gw.client.get("/apis/chat-api/lifecycle/history").await?;
    let steps: Vec<[String; 3]> = steps
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            assert!(s["when"].is_string() && s["who"] == "operator", "{s}");
            [text(s, "from"), text(s, "to"), text(s, "note")]
        })
        .collect();
    let expected = [
        ["Created", "Pre-Released", ""],
        ["Pre-Released", "Published", "GA"],
        ["Published", "Blocked", "incident 42"],
        ["Blocked", "Published", ""],
        ["Published", "Deprecated", ""],
        ["Deprecated", "Retired", ""],
    ];
    assert_eq!(steps, expected.map(|s| s.map(String::from)));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_major_version_path_reaches_the_latest_minor_and_a_subscription_spans_minors(
) -> anyhow::Result<()> {
    let (v1_0, v1_1, v2) = (
        Backend::echo().await?,
        Backend::echo().await?,
        Backend::echo().await?,
    );
    let gw = TestPlatform::start().await?;
    let (first, url_1_0) = gw.publish_sample(&v1_0.url).await?;
    let (app, key) = gw.subscribed_app("App", "Unlimited").await?;

    // Two more versions, each deployed with its own backend and published.
    let mut ids = Vec::new();
    for (version, backend) in [("1.1.0", &v1_1), ("2.0.0", &v2)] {
        let made = gw
            .client
            .post(
                &format!("/apis/{first}/versions"),
                &json!({ "version": version }),
            )
            .await?;
        assert_eq!(made["basePath"], format!("/default/chat-api/v{version}"));
        assert_eq!(
            (made["lifecycle"].clone(), made["latestRevision"].clone()),
            (json!("Created"), Value::Null)
        );
        let id = text(&made, "id");
        gw.client
            .patch(&format!("/apis/{id}"), &json!({ "target": backend.url }))
            .await?;
        gw.deploy(&id, "development", "external").await?;
        gw.client
            .post(
                &format!("/apis/{id}/lifecycle"),
                &json!({ "action": "publish" }),
            )
            .await?;
        ids.push(id);
    }
    // The identifier alone now names several versions.
    let e = refusal(gw.client.get("/apis/chat-api")).await;
    assert!(
        e.starts_with("HTTP 409") && e.contains("`chat-api@1.1.0`"),
        "{e}"
    );
    assert_eq!(
        gw.client.get("/apis/chat-api@1.1.0").await?["id"],
        ids[0].as_str()
    );
    let e = refusal(gw.client.post(
        &format!("/apis/{first}/versions"),
        &json!({ "version": "1.1.0" }),
    ))
    .await;
    assert!(
        e.starts_with("HTTP 409") && e.contains("already has a version 1.1.0"),
        "{e}"
    );

    // The path naming the major version reaches its latest minor version.
    let listener = gw.listener("development", true);
    let major = |m: &str| format!("{listener}/default/chat-api/{m}");
    let mut c = WsClient::with_key(&major("v1"), &key).await?;
    assert_eq!(backend_of(&mut c).await?, host(&v1_1.url));
    // The subscription to 1.0.0 covers 1.1.0, not 2.0.0.
    let mut c = WsClient::with_key(&url_1_0.replace("v1.0.0", "v1.1.0"), &key).await?;
    assert_eq!(backend_of(&mut c).await?, host(&v1_1.url));
    let refused = WsClient::refused(&major("v2"), &[("api-key", &key)]).await?;
    assert_eq!(refused.status, 403, "{}", refused.body);
    gw.client
        .post(
            &format!("/applications/{}/subscriptions", text(&app, "id")),
            &json!({ "api": ids[1] }),
        )
        .await?;
    let mut c = WsClient::with_key(&major("v2"), &key).await?;
    assert_eq!(backend_of(&mut c).await?, host(&v2.url));

    // With 1.1.0 gone from development, the major path falls back to 1.0.0.
    gw.client
        .delete(&format!("/apis/{}/deployments/development", ids[0]))
        .await?;
    let mut c = WsClient::with_key(&major("v1"), &key).await?;
    assert_eq!(backend_of(&mut c).await?, host(&v1_0.url));

    // The portal groups the versions.
    let listed = in_catalogue(&gw, &first).await?.expect("listed");
    assert_eq!(listed["group"], "default/chat-api");
    let versions: Vec<String> = listed["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| text(v, "version"))
        .collect();
    assert_eq!(versions, ["1.0.0", "1.1.0", "2.0.0"]);
    gw.shutdown().await;
    Ok(())
}
