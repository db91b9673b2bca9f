//! Hostile and unusual imports through the management API: each refused with a 4xx that
//! names the budget or rule that refused it, with nothing stored. (How long a refusal
//! takes is measured in `crates/asyncgate-contract/examples/load_bench.rs`, not here.)

use asyncgate_testkit::{FileServer, TestPlatform};
use serde_json::json;

async fn refused(gw: &TestPlatform, body: serde_json::Value) -> String {
    gw.client
        .post("/apis/import", &body)
        .await
        .expect_err("refused")
        .to_string()
}

#[tokio::test]
async fn hostile_documents_are_refused_by_their_budgets() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let target = "ws://127.0.0.1:1";

    let mut laughs = String::from("asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels: {}\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        laughs.push_str(&format!("x-a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let err = refused(&gw, json!({ "contract": laughs, "target": target })).await;
    assert!(
        err.contains("422") && err.contains("too many values") && err.contains("budget breached"),
        "billion laughs: {err}"
    );

    let deep = format!(
        "asyncapi: 2.6.0\ninfo: {{title: t, version: '1'}}\nchannels: {{}}\nx-deep: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = refused(&gw, json!({ "contract": deep, "target": target })).await;
    assert!(
        err.contains("422") && err.contains("deeper than"),
        "deep nesting: {err}"
    );

    let cyclic = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a: {$ref: '#/components/x'}\ncomponents:\n  x: {$ref: '#/components/y'}\n  y: {$ref: '#/components/x'}\n";
    let err = refused(&gw, json!({ "contract": cyclic, "target": target })).await;
    assert!(err.contains("cycle"), "cyclic refs: {err}");

    let remote = "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels:\n  /a: {$ref: 'file:///etc/passwd'}\n";
    let err = refused(&gw, json!({ "contract": remote, "target": target })).await;
    assert!(
        err.contains("/channels/~1a/$ref") && err.contains("http(s) URLs only"),
        "file ref: {err}"
    );

    // 50 MiB: refused from its length, before it is read.
    let huge = "x".repeat(50 << 20);
    let err = refused(&gw, json!({ "contract": huge, "target": target })).await;
    assert!(err.contains("413"), "50 MiB body: {err}");

    assert_eq!(gw.client.get("/apis").await?, json!([]));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn url_imports_cannot_reach_loopback_or_metadata_addresses() -> anyhow::Result<()> {
    let served =
        FileServer::serve("/c.yaml", asyncgate_testkit::SAMPLE_CONTRACT.to_string()).await?;
    let port = served
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let locked = TestPlatform::start_locked_down().await?;
    // A hostname that resolves to 127.0.0.1.
    let err = refused(
        &locked,
        json!({ "url": format!("http://localhost:{port}/c.yaml"), "target": "ws://127.0.0.1:1" }),
    )
    .await;
    assert!(err.contains("403") && err.contains("127.0.0.1"), "{err}");
    locked.shutdown().await;

    // Even with private addresses allowed, a redirect to the metadata address is refused,
    // checked before any connection is made to it.
    let gw = TestPlatform::start().await?;
    let redirect = FileServer::redirect("http://169.254.169.254/latest/meta-data/").await?;
    let err = refused(
        &gw,
        json!({ "url": redirect.url, "target": "ws://127.0.0.1:1" }),
    )
    .await;
    assert!(
        err.contains("403") && err.contains("169.254.169.254") && err.contains("never allowed"),
        "{err}"
    );
    // More than three redirects is refused too.
    let hop3 = FileServer::redirect(&served.url).await?;
    let hop2 = FileServer::redirect(&hop3.url).await?;
    let hop1 = FileServer::redirect(&hop2.url).await?;
    let hop0 = FileServer::redirect(&hop1.url).await?;
    let err = refused(
        &gw,
        json!({ "url": hop0.url, "target": "ws://127.0.0.1:1" }),
    )
    .await;
    assert!(err.contains("redirected more than 3 times"), "{err}");
    // Three are fine.
    let ok = gw
        .client
        .post(
            "/apis/import",
            &json!({ "url": hop1.url, "target": "ws://127.0.0.1:1" }),
        )
        .await?;
    assert_eq!(ok["name"], "Chat API");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn asyncapi_3_contracts_import_and_route_by_address() -> anyhow::Result<()> {
    let chat = asyncgate_testkit::Backend::chat().await?;
    let gw = TestPlatform::start().await?;
    let contract = include_str!("../../../samples/chat-service-asyncapi-3.yaml");
    let api = gw
        .client
        .post(
            "/apis/import",
            &json!({ "contract": contract, "target": chat.url }),
        )
        .await?;
    assert_eq!(api["contract"]["asyncapiVersion"], "3.0.0");
    assert_eq!(
        api["channels"][0]["clientToServer"],
        json!(["Connect", "Data"])
    );
    let url = gw.deploy("chat-api", "development", "external").await?["url"]
        .as_str()
        .unwrap()
        .to_string();
    let key = gw.create_key("chat-api").await?;
    let mut c = asyncgate_testkit::WsClient::with_key(&url, &key).await?;
    c.send_text(r#"{"type":"Connect","username":"v3"}"#).await?;
    assert_eq!(c.recv_json().await?["username"], "v3");
    c.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn reimport_reports_a_diff_export_returns_the_source_and_the_portal_serves_a_consumer_contract(
) -> anyhow::Result<()> {
    let chat = asyncgate_testkit::Backend::chat().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&chat.url).await?;
    gw.deploy("chat-api", "development", "external").await?;

    // The imported contract comes back as it was sent.
    let exported = gw.client.get_text("/apis/chat-api/contract").await?;
    assert_eq!(exported, asyncgate_testkit::SAMPLE_CONTRACT);

    // Re-import the 3.0 version: the old `message` is gone on both directions.
    let v3 = include_str!("../../../samples/chat-service-asyncapi-3.yaml");
    let result = gw
        .client
        .put("/apis/chat-api/contract", &json!({ "contract": v3 }))
        .await?;
    let diff = &result["diff"];
    assert_eq!(diff["breaking"], true, "{diff}");
    let changes: Vec<String> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["kind"].as_str().unwrap(),
                c["what"].as_str().unwrap(),
                c["path"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        changes.contains(&"removed message / client sends message".to_string()),
        "{changes:?}"
    );
    assert!(
        changes.contains(&"added message / client sends Connect".to_string()),
        "{changes:?}"
    );
    assert_eq!(result["api"]["contract"]["asyncapiVersion"], "3.0.0");
    // Nothing is live until deployed: development still runs revision 1.
    assert_eq!(result["api"]["deployments"][0]["revision"], 1);
    assert_eq!(
        gw.deploy("chat-api", "development", "external").await?["revision"],
        2
    );
    // A broken re-import changes nothing.
    let err = gw
        .client
        .put(
            "/apis/chat-api/contract",
            &json!({ "contract": "asyncapi: 3.0.0\n" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("422"), "{err}");
    assert_eq!(gw.client.get_text("/apis/chat-api/contract").await?, v3);

    // The consumer contract: only for published APIs, servers are the gateway.
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/portal/apis/chat-api/contract", gw.management());
    assert_eq!(http.get(&url).send().await?.status(), 404);
    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
        .await?;
    let consumer: serde_json::Value = http.get(&url).send().await?.json().await?;
    let dev = &consumer["servers"]["development"];
    assert_eq!(
        format!("ws://{}", dev["host"].as_str().unwrap()),
        gw.listener("development", true)
    );
    assert_eq!(dev["pathname"], "/default/chat-api/v1.0.0");
    assert_eq!(
        consumer["components"]["securitySchemes"]["asyncgateApiKey"]["in"],
        "header"
    );
    let yaml = http.get(format!("{url}?format=yaml")).send().await?;
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    let yaml = yaml.text().await?;
    assert!(yaml.contains("asyncgateApiKey"), "{yaml}");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn contracts_upload_as_raw_yaml_raw_json_or_multipart() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let http = reqwest::Client::new();
    let token = std::fs::read_to_string(&gw.platform.endpoints.admin_token_file)?;
    let token = token.trim();
    let import = format!("{}/api/v1/apis/import", gw.management());

    // The YAML document as the body, overrides in the query.
    let resp = http
        .post(format!(
            "{import}?identifier=raw-yaml&target=ws://127.0.0.1:1"
        ))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(asyncgate_testkit::SAMPLE_CONTRACT)
        .send()
        .await?;
    assert_eq!(resp.status(), 201, "{}", resp.text().await?);

    // A JSON AsyncAPI document as the body.
    let v3 = include_str!("../../../samples/chat-service-asyncapi-3.yaml");
    let as_json = serde_json::to_string(&serde_saphyr::from_str::<serde_json::Value>(v3)?)?;
    let resp = http
        .post(format!("{import}?identifier=raw-json"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(as_json)
        .send()
        .await?;
    assert_eq!(resp.status(), 201, "{}", resp.text().await?);

    // A multipart upload, as a browser form sends it.
    let form = reqwest::multipart::Form::new()
        .part(
            "contract",
            reqwest::multipart::Part::text(asyncgate_testkit::SAMPLE_CONTRACT)
                .file_name("asyncapi.yaml"),
        )
        .text("identifier", "form")
        .text("target", "ws://127.0.0.1:2");
    let resp = http
        .post(&import)
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    assert_eq!(resp.status(), 201, "{}", resp.text().await?);
    let created: serde_json::Value = resp.json().await?;
    assert_eq!(created["target"], "ws://127.0.0.1:2");
    // A field that is not one of the import's is named, in the form and in the query.
    let form = reqwest::multipart::Form::new()
        .text("contract", asyncgate_testkit::SAMPLE_CONTRACT)
        .text("targte", "ws://127.0.0.1:2");
    let resp = http
        .post(&import)
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await?.contains("targte"));
    let resp = http
        .post(format!("{import}?identifer=x"))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(asyncgate_testkit::SAMPLE_CONTRACT)
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await?.contains("identifer"));

    // Something else is named as such.
    let resp = http
        .post(&import)
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await?;
    assert_eq!(resp.status(), 415);
    let ids: Vec<String> = gw
        .client
        .get("/apis")
        .await?
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["identifier"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["raw-yaml", "raw-json", "form"]);
    gw.shutdown().await;
    Ok(())
}

const BUNDLE_ROOT: &str = "asyncapi: 2.6.0\ninfo: {title: Rooms, version: 1.0.0}\nchannels:\n  /rooms/{roomId}:\n    parameters:\n      roomId: {$ref: 'common/parameters.yaml#/roomId'}\n    publish:\n      message: {$ref: 'common/messages.yaml#/Say'}\n    subscribe:\n      message: {$ref: 'common/messages.yaml#/Heard'}\n";
const BUNDLE_MESSAGES: &str = "Say:\n  name: Say\n  payload: {$ref: '../schemas.yaml#/text'}\nHeard:\n  name: Heard\n  payload: {$ref: '#/Say/payload'}\n";
const BUNDLE_PARAMETERS: &str = "roomId: {schema: {type: string}}\n";
const BUNDLE_SCHEMAS: &str = "text: {type: string, maxLength: 280}\n";

fn bundle_files() -> serde_json::Value {
    json!({
        "asyncapi.yaml": BUNDLE_ROOT,
        "common/messages.yaml": BUNDLE_MESSAGES,
        "common/parameters.yaml": BUNDLE_PARAMETERS,
        "schemas.yaml": BUNDLE_SCHEMAS,
    })
}

#[tokio::test]
async fn multi_file_bundles_import_as_json_files_or_a_zip() -> anyhow::Result<()> {
    let gw = TestPlatform::start_locked_down().await?;
    let api = gw
        .client
        .post(
            "/apis/import",
            &json!({ "files": bundle_files(), "target": "ws://127.0.0.1:1" }),
        )
        .await?;
    assert_eq!(api["channels"][0]["address"], "/rooms/{roomId}");
    assert_eq!(api["channels"][0]["clientToServer"], json!(["Say"]));
    assert_eq!(api["channels"][0]["serverToClient"], json!(["Heard"]));
    let payload = &api["contract"]["channels"][0]["clientToServer"]["messages"][0]["payload"];
    assert_eq!(
        payload["maxLength"], 280,
        "the schema from another file was followed"
    );

    // The same bundle as a zip upload, root named in the query.
    let mut zipped = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zipped));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, text) in [
            ("main.yaml", BUNDLE_ROOT),
            ("common/messages.yaml", BUNDLE_MESSAGES),
            ("common/parameters.yaml", BUNDLE_PARAMETERS),
            ("schemas.yaml", BUNDLE_SCHEMAS),
        ] {
            use std::io::Write;
            w.start_file(name, opts)?;
            w.write_all(text.as_bytes())?;
        }
        w.finish()?;
    }
    let token = std::fs::read_to_string(&gw.platform.endpoints.admin_token_file)?;
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/apis/import?root=main.yaml&identifier=zipped&target=ws://127.0.0.1:1",
            gw.management()
        ))
        .bearer_auth(token.trim())
        .header("content-type", "application/zip")
        .body(zipped)
        .send()
        .await?;
    assert_eq!(resp.status(), 201, "{}", resp.text().await?);

    // A file missing from the bundle is named.
    let mut partial = bundle_files();
    partial.as_object_mut().unwrap().remove("schemas.yaml");
    let err = gw
        .client
        .post(
            "/apis/import",
            &json!({ "files": partial, "identifier": "partial", "target": "ws://127.0.0.1:1" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("422") && err.contains("schemas.yaml is not in the uploaded bundle"),
        "{err}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn remote_refs_are_fetched_under_the_url_import_guards() -> anyhow::Result<()> {
    let schemas = FileServer::serve("/schemas.yaml", BUNDLE_SCHEMAS.to_string()).await?;
    let doc = format!(
        "asyncapi: 2.6.0\ninfo: {{title: Remote, version: 1.0.0}}\nchannels:\n  /a:\n    subscribe:\n      message: {{name: M, payload: {{$ref: '{}#/text'}}}}\n",
        schemas.url
    );
    let body = json!({ "contract": doc, "target": "ws://127.0.0.1:1" });
    // Off by default: an absolute reference is refused, naming the setting.
    let gw = TestPlatform::start().await?;
    let err = refused(&gw, body.clone()).await;
    assert!(
        err.contains("422") && err.contains("import.allow_absolute_references"),
        "{err}"
    );
    gw.shutdown().await;
    // Allowed, and allowed to reach 127.0.0.1: the remote schema is followed.
    let open = TestPlatform::start_with(|c| {
        c.import.allow_private_addresses = true;
        c.import.allow_absolute_references = true;
    })
    .await?;
    let api = open.client.post("/apis/import", &body).await?;
    assert_eq!(
        api["contract"]["channels"][0]["serverToClient"]["messages"][0]["payload"]["maxLength"],
        280
    );
    open.shutdown().await;
    // Even then, by default a ref to a loopback address is refused like a URL import.
    let locked = TestPlatform::start_with(|c| c.import.allow_absolute_references = true).await?;
    let err = refused(&locked, body).await;
    assert!(err.contains("422") && err.contains("loopback"), "{err}");
    locked.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_url_import_follows_relative_references_next_to_it_under_the_same_guards(
) -> anyhow::Result<()> {
    let root = "asyncapi: 2.6.0\ninfo: {title: Split, version: 1.0.0}\nchannels:\n  /a:\n    subscribe:\n      message: {name: M, payload: {$ref: 'common/schemas.yaml#/text'}}\n";
    let served = FileServer::serve_files(&[
        ("contracts/api.yaml", root),
        ("contracts/common/schemas.yaml", BUNDLE_SCHEMAS),
        ("moved/api.yaml", root),
        ("lonely/api.yaml", root),
        (
            "moved/common/schemas.yaml",
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\n\r\n",
        ),
    ])
    .await?;
    let import = |path: &str| json!({ "url": format!("{}{path}", served.url), "target": "ws://127.0.0.1:1" });
    let gw = TestPlatform::start().await?;
    let api = gw
        .client
        .post("/apis/import", &import("contracts/api.yaml"))
        .await?;
    assert_eq!(
        api["contract"]["channels"][0]["serverToClient"]["messages"][0]["payload"]["maxLength"],
        280
    );
    // The neighbour is fetched by the same guarded fetcher: its redirect to the metadata
    // address is refused, and the reference is named.
    let err = refused(&gw, import("moved/api.yaml")).await;
    assert!(
        err.contains("422")
            && err.contains("common/schemas.yaml")
            && err.contains("169.254.169.254"),
        "{err}"
    );
    // A missing neighbour is named too.
    let err = refused(&gw, import("lonely/api.yaml")).await;
    assert!(
        err.contains("422") && err.contains("common/schemas.yaml") && err.contains("404"),
        "{err}"
    );
    gw.shutdown().await;
    Ok(())
}
