//! Operating the platform over real sockets: live connections listed with their counts,
//! sent a message and closed through the management API; every metric moving as
//! traffic flows (scraped and parsed by a Prometheus text parser); an access-log line
//! per connection with the right counts; the request id and trace context the backend
//! gets.

use asyncgate_testkit::{eventually, Backend, TestPlatform, WsClient};
use prometheus_parse::{Scrape, Value as Metric};
use serde_json::{json, Value};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn scrape(p: &TestPlatform, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", p.management()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

/// The value of the sample `name` whose labels include every one of `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
            Metric::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Metric::Summary(_) => f64::NAN,
        })
}

fn access_log(p: &TestPlatform) -> Vec<Value> {
    std::fs::read_to_string(p.data_dir().join("access.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn operators_see_count_and_steer_live_connections() -> anyhow::Result<()> {
    let backend = Backend::echo().await?;
    let p = TestPlatform::start().await?;
    let (url, key) = p.deploy_sample(&backend.url).await?;
    let api = p.client.get("/apis/chat-api").await?;
    let handle = format!("chat-api@{}", api["version"].as_str().unwrap_or_default());

    // The backend is told the request id and the client's trace context.
    let mut a = WsClient::connect(&url, &[("api-key", &key), ("traceparent", TRACEPARENT)]).await?;
    let hello = a.recv_json().await?;
    let request_id = hello["headers"]["x-request-id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(request_id.len(), 32, "{hello}");
    assert_eq!(hello["headers"]["traceparent"], TRACEPARENT);
    for text in ["one", "two"] {
        a.send_text(text).await?;
        assert_eq!(a.recv_text().await?, text);
    }
    let mut b = WsClient::with_key(&url, &key).await?;
    b.recv_json().await?;
    b.send_text("three").await?;
    assert_eq!(b.recv_text().await?, "three");
    // A refused handshake, to be counted and logged.
    let refused = WsClient::refused(&url, &[]).await?;
    assert_eq!(refused.status, 401);

    // Listed, with what each carried so far.
    let live = p.client.get("/apis/chat-api/connections").await?;
    let live = live.as_array().cloned().unwrap_or_default();
    assert_eq!(live.len(), 2, "{live:?}");
    let mine = live
        .iter()
        .find(|c| c["requestId"] == request_id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(mine["environment"], "development");
    assert_eq!(mine["listener"], "external");
    assert_eq!(mine["messagesIn"], 2, "{mine}");
    assert_eq!(mine["messagesOut"], 3, "{mine}");
    assert!(mine["bytesIn"].as_u64().unwrap_or(0) > 6, "{mine}");
    assert_eq!(mine["credential"], "api-key");
    assert!(!mine.to_string().contains(&key), "no secret in {mine}");
    let id = mine["id"].as_str().unwrap_or_default().to_string();
    let in_production = p
        .client
        .get("/apis/chat-api/connections?env=production")
        .await?;
    assert_eq!(in_production, json!([]));
    let err = p
        .client
        .get("/apis/chat-api/connections?env=nowhere")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no environment `nowhere`"),
        "{err}"
    );

    // A message from the operator reaches that client only.
    let path = format!("/apis/chat-api/connections/{id}");
    p.client
        .post(
            &format!("{path}/messages"),
            &json!({ "text": "from the operator" }),
        )
        .await?;
    assert_eq!(a.recv_text().await?, "from the operator");
    for (body, expected) in [
        (json!({ "text": "x", "binary": "eA==" }), "exactly one"),
        (json!({ "binary": "not base64!" }), "not base64"),
    ] {
        let err = p
            .client
            .post(&format!("{path}/messages"), &body)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = p
        .client
        .post(
            "/apis/chat-api/connections/00000000000000ff/messages",
            &json!({ "text": "x" }),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no live connection"), "{err}");
    let err = p
        .client
        .delete(&format!("{path}?code=1006"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be sent"), "{err}");

    // Closed with the operator's code and reason; the backend is told 1001.
    p.client
        .delete(&format!("{path}?code=4001&reason=maintenance"))
        .await?;
    assert_eq!(a.recv_close().await?, (4001, "maintenance".to_string()));
    backend.wait_event("close:1001").await?;
    eventually("the closed connection to leave the list", || {
        p.platform
            .gateway()
            .live()
            .count("development", api["id"].as_str().unwrap_or(""))
            == 1
    })
    .await?;

    // Every metric moved, under bounded labels.
    let (status, _) = scrape(&p, None).await?;
    assert_eq!(status, 401);
    let token = std::fs::read_to_string(&p.platform.endpoints.admin_token_file)?;
    let (status, text) = scrape(&p, Some(token.trim())).await?;
    assert_eq!(status, 200);
    let m = Scrape::parse(text.lines().map(|l| Ok(l.to_string())))?;
    let dev = [("api", handle.as_str()), ("environment", "development")];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = dev.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(
        value(&m, "asyncgate_connections_active", &dev),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &m,
            "asyncgate_connections_opened_total",
            &with(("listener", "external"))
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &m,
            "asyncgate_connections_closed_total",
            &[("code", "4001"), ("closed_by", "gateway")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &m,
            "asyncgate_messages_total",
            &with(("direction", "client_to_backend"))
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        value(
            &m,
            "asyncgate_messages_total",
            &with(("direction", "backend_to_client"))
        ) == Some(5.0),
        "{text}"
    );
    assert!(
        value(
            &m,
            "asyncgate_transferred_bytes_total",
            &with(("direction", "client_to_backend"))
        ) > Some(10.0)
    );
    assert_eq!(
        value(
            &m,
            "asyncgate_handshakes_refused_total",
            &[("code", "missing_credentials"), ("listener", "external")]
        ),
        Some(1.0),
        "{text}"
    );
    // Each listener's series exists from its start (at 0), this one counted both.
    assert!(
        value(
            &m,
            "asyncgate_handshake_duration_seconds",
            &[("environment", "development"), ("listener", "external")]
        ) >= Some(2.0),
        "{text}"
    );
    assert!(value(&m, "asyncgate_backend_connect_duration_seconds", &dev) >= Some(2.0));
    assert!(value(&m, "asyncgate_snapshot_version", &[]) >= Some(1.0));
    assert!(value(&m, "asyncgate_snapshot_apply_duration_seconds", &[]).is_some());
    assert_eq!(
        value(
            &m,
            "asyncgate_messages_refused_total",
            &with(("reason", "contract"))
        ),
        Some(0.0)
    );
    assert!(value(&m, "process_resident_memory_bytes", &[]) > Some(1e6));
    assert!(value(&m, "process_open_fds", &[]) > Some(4.0));
    assert!(!text.contains(&id), "no connection ids in labels");
    assert!(!text.contains(&request_id), "no request ids in labels");

    // One access-log line per connection: the refused one and the closed one.
    eventually("the closed connection's access-log line", || {
        access_log(&p)
            .iter()
            .any(|l| l["request_id"] == request_id.as_str())
    })
    .await?;
    let lines = access_log(&p);
    let line = lines
        .iter()
        .find(|l| l["request_id"] == request_id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(line["status"], 101, "{line}");
    assert_eq!(line["api"], handle.as_str());
    assert_eq!(line["environment"], "development");
    assert_eq!(line["messages_in"], 2, "{line}");
    // From the backend: the gateway's own message is not the backend's.
    assert_eq!(line["messages_out"], 3, "{line}");
    assert_eq!(line["close_code"], 4001);
    assert_eq!(line["close_reason"], "maintenance");
    assert_eq!(line["closed_by"], "gateway");
    assert!(line["bytes_out"].as_u64().unwrap_or(0) > 20, "{line}");
    assert!(!line.to_string().contains(&key), "no secret in {line}");
    let refusal = lines
        .iter()
        .find(|l| l["status"] == 401)
        .cloned()
        .unwrap_or_default();
    assert_eq!(refusal["error"], "missing_credentials", "{lines:?}");

    // The other client closes normally: its line says the client closed with 1000.
    b.close().await;
    eventually("the second access-log line", || {
        access_log(&p)
            .iter()
            .any(|l| l["status"] == 101 && l["closed_by"] == "client")
    })
    .await?;
    let line = access_log(&p)
        .into_iter()
        .find(|l| l["closed_by"] == "client")
        .unwrap_or_default();
    // Its close frame carried no code: 1005, as RFC 6455 7.1.5 names it.
    assert_eq!(line["close_code"], 1005, "{line}");
    assert_eq!(line["messages_in"], 1, "{line}");
    Ok(())
}

#[tokio::test]
async fn metrics_open_to_a_network_need_no_token_and_others_need_the_admin_token(
) -> anyhow::Result<()> {
    let p = TestPlatform::start_with(|c| {
        c.metrics_open_to = asyncgate_core::Networks::parse(&["127.0.0.0/8"]).unwrap()
    })
    .await?;
    let (status, text) = scrape(&p, None).await?;
    assert_eq!(status, 200);
    assert!(text.contains("asyncgate_snapshot_version"), "{text}");
    p.shutdown().await;

    let p = TestPlatform::start().await?;
    let (status, _) = scrape(&p, Some("not-a-token")).await?;
    assert_eq!(status, 401);
    // A user's token is not enough: metrics span every organization.
    let user = p
        .client
        .post(
            "/users",
            &json!({ "email": "pub@example.com", "role": "publisher", "password": "a long enough password" }),
        )
        .await?;
    assert_eq!(user["email"], "pub@example.com");
    let login: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/login", p.management()))
        .json(&json!({ "email": "pub@example.com", "password": "a long enough password" }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().unwrap_or_default().to_string();
    assert!(!token.is_empty(), "{login}");
    let (status, _) = scrape(&p, Some(&token)).await?;
    assert_eq!(status, 403);
    Ok(())
}

/// Metric names a PromQL expression reads (the platform's and the process's).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for ch in expr.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_alphanumeric() || ch == '_' || ch == ':' {
            word.push(ch);
            continue;
        }
        if word.starts_with("asyncgate_") || word.starts_with("process_") {
            names.push(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

#[tokio::test]
async fn every_query_of_the_grafana_dashboard_reads_an_exported_metric() -> anyhow::Result<()> {
    let dashboard: Value =
        serde_json::from_str(include_str!("../../../docs/grafana/asyncgate.json"))?;
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");

    // Traffic of every kind, so that every family has samples.
    let backend = Backend::echo().await?;
    let p = TestPlatform::start().await?;
    let (url, key) = p.deploy_sample(&backend.url).await?;
    let mut c = WsClient::with_key(&url, &key).await?;
    c.recv_json().await?;
    c.send_text("x").await?;
    c.recv_text().await?;
    c.close().await;
    assert_eq!(WsClient::refused(&url, &[]).await?.status, 401);
    eventually("the connection to end", || {
        p.platform
            .gateway()
            .metrics()
            .encode()
            .contains("asyncgate_connections_closed_total{")
    })
    .await?;
    let text = p.platform.gateway().metrics().encode();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string())))?;
    let exported: std::collections::HashSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    assert!(!scrape.samples.is_empty());
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} reads no metric");
        for name in names {
            assert!(
                exported.contains(&name),
                "{expr}: {name} is not exported\n{text}"
            );
        }
    }
    Ok(())
}
