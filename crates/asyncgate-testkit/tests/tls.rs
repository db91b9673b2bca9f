//! TLS on the listeners, over real sockets with test CAs: `wss://` from client to gateway
//! to backend, the certificate reloaded while a connection stays open, client
//! certificates required (mTLS), public URLs shown everywhere, and the management
//! listener over HTTPS with Secure cookies.

use asyncgate::config::ListenerOptions;
use asyncgate_gateway::tls::TlsFiles;
use asyncgate_testkit::{Backend, TestCa, TestPlatform, WsClient, WAIT};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writable temp dir");
    path
}

/// The certificate a TLS server at `addr` presents to a client trusting `client`.
async fn served_certificate(
    addr: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> anyhow::Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let tls = tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(client).connect(name, tcp),
    )
    .await??;
    let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
    Ok(certs.first().map(|c| c.to_vec()).unwrap_or_default())
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    let u = url::Url::parse(url).expect("listener URL");
    std::net::SocketAddr::from(([127, 0, 0, 1], u.port().expect("a port")))
}

#[tokio::test]
async fn wss_end_to_end_with_reload_mtls_and_public_urls() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("asyncgate test CA")?;
    let server = ca.issue(&["localhost", "127.0.0.1"], "gateway", false)?;
    let cert_file = write(dir.path(), "gateway.pem", &server.cert_pem);
    let key_file = write(dir.path(), "gateway.key", &server.key_pem);
    let client_ca = TestCa::new("client CA")?;
    let client_ca_file = write(dir.path(), "clients.pem", &client_ca.pem);
    let (backend, backend_ca) = Backend::echo_tls().await?;
    let backend_ca_file = write(dir.path(), "backend-ca.pem", &backend_ca);

    let files = TlsFiles {
        cert_file: cert_file.clone(),
        key_file: key_file.clone(),
        client_ca_file: None,
    };
    let p = TestPlatform::start_with(move |c| {
        c.import.allow_private_addresses = true;
        c.gateway.backend_ca_file = Some(backend_ca_file.clone());
        c.tls_reload_interval = std::time::Duration::from_millis(200);
        let dev = &mut c.environments[0];
        dev.external_options.tls = Some(files.clone());
        // The internal listener asks for client certificates from the client CA.
        dev.internal_options.tls = Some(TlsFiles {
            client_ca_file: Some(client_ca_file.clone()),
            ..files.clone()
        });
        c.environments[1].external_options = ListenerOptions {
            tls: None,
            public_url: Some("wss://chat.example.com".into()),
        };
    })
    .await?;

    // URLs say wss://, or the public URL where one is configured.
    let envs = &p.platform.endpoints.environments;
    assert!(
        envs["development"].external.starts_with("wss://"),
        "{envs:?}"
    );
    assert!(envs["development"].internal.starts_with("wss://"));
    assert_eq!(envs["production"].external, "wss://chat.example.com");
    assert!(envs["production"].internal.starts_with("ws://"));

    let (url, key) = p.deploy_sample(&backend.url).await?;
    assert!(url.starts_with("wss://"), "{url}");
    let trust = ca.client_config(None)?;

    // wss:// to the gateway, wss:// (with its own CA) on to the backend; the backend is
    // told the client used https.
    let mut a = WsClient::connect_tls(&url, &[("api-key", &key)], trust.clone()).await?;
    let hello = a.recv_json().await?;
    assert_eq!(hello["headers"]["x-forwarded-proto"], "https", "{hello}");
    a.send_text("over tls").await?;
    assert_eq!(a.recv_text().await?, "over tls");
    // A plain ws:// client gets nowhere on a TLS listener.
    let plain = url.replacen("wss://", "ws://", 1);
    assert!(WsClient::with_key(&plain, &key).await.is_err());

    // A new certificate is taken up without a restart; the open connection goes on.
    let external = addr_of(&envs["development"].external);
    let before = served_certificate(external, trust.clone()).await?;
    let renewed = ca.issue(&["localhost", "127.0.0.1"], "gateway renewed", false)?;
    std::fs::write(&key_file, &renewed.key_pem)?;
    std::fs::write(&cert_file, &renewed.cert_pem)?;
    let mut now_served = before.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while now_served == before && tokio::time::Instant::now() < deadline {
        // A half-written pair is refused by the reload and the old one stays: retry.
        now_served = served_certificate(external, trust.clone())
            .await
            .unwrap_or(before.clone());
        if now_served == before {
            // Looked at again shortly, as `eventually` does.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_ne!(
        now_served, before,
        "the renewed certificate was not taken up"
    );
    a.send_text("still here").await?;
    assert_eq!(a.recv_text().await?, "still here");
    let mut b = WsClient::connect_tls(&url, &[("api-key", &key)], trust.clone()).await?;
    b.recv_json().await?;

    // mTLS: the internal listener refuses a client without a certificate from its CA.
    let internal_url = url.replace(&envs["development"].external, &envs["development"].internal);
    assert!(
        WsClient::connect_tls(&internal_url, &[("api-key", &key)], trust.clone())
            .await
            .is_err(),
        "no client certificate"
    );
    let stranger = TestCa::new("another CA")?.issue(&["client"], "stranger", true)?;
    assert!(
        WsClient::connect_tls(
            &internal_url,
            &[("api-key", &key)],
            ca.client_config(Some(&stranger))?
        )
        .await
        .is_err(),
        "a certificate from another CA"
    );
    let member = client_ca.issue(&["client"], "member", true)?;
    let mut c = WsClient::connect_tls(
        &internal_url,
        &[("api-key", &key)],
        ca.client_config(Some(&member))?,
    )
    .await?;
    c.recv_json().await?;
    c.send_text("mutual").await?;
    assert_eq!(c.recv_text().await?, "mutual");
    let metrics = p.platform.gateway().metrics().encode();
    assert!(
        metrics.contains(r#"code="tls_handshake_failed""#),
        "{metrics}"
    );

    // Production's public URL is what every view shows: the API, the portal, the
    // consumer contract.
    p.deploy("chat-api", "production", "external").await?;
    let shown = p.client.get("/apis/chat-api").await?;
    let production = shown["deployments"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["environment"] == "production"))
        .cloned()
        .unwrap_or_default();
    assert!(
        production["url"]
            .as_str()
            .unwrap_or("")
            .starts_with("wss://chat.example.com/"),
        "{production}"
    );
    p.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
        .await?;
    let contract = reqwest::get(format!(
        "{}/api/v1/portal/apis/chat-api/contract?format=json",
        p.management()
    ))
    .await?
    .text()
    .await?;
    assert!(contract.contains("chat.example.com"), "{contract}");
    let portal: Value = reqwest::get(format!("{}/api/v1/portal/apis/chat-api", p.management()))
        .await?
        .json()
        .await?;
    assert!(
        portal.to_string().contains("wss://chat.example.com"),
        "{portal}"
    );
    Ok(())
}

#[tokio::test]
async fn the_management_listener_serves_https_with_secure_cookies() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("management CA")?;
    let server = ca.issue(&["console.example.test"], "console", false)?;
    let files = TlsFiles {
        cert_file: write(dir.path(), "m.pem", &server.cert_pem),
        key_file: write(dir.path(), "m.key", &server.key_pem),
        client_ca_file: None,
    };
    let p = TestPlatform::start_with(move |c| {
        c.management_options = ListenerOptions {
            tls: Some(files.clone()),
            public_url: Some("https://console.example.test".into()),
        };
    })
    .await?;
    assert_eq!(
        p.platform.endpoints.management,
        "https://console.example.test"
    );
    assert_eq!(
        p.platform.endpoints.console,
        "https://console.example.test/console/"
    );
    let addr = p.platform.management_addr();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes())?)
        .resolve("console.example.test", addr)
        .build()?;
    let base = format!("https://console.example.test:{}", addr.port());
    let ready = http.get(format!("{base}/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    // Tokens are issued by the public URL.
    let discovery: Value = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(discovery["issuer"], "https://console.example.test");
    // Every cookie of the console is Secure (and HttpOnly, SameSite); HSTS is sent.
    let page = http.get(format!("{base}/console/")).send().await?;
    assert!(page.headers().contains_key("strict-transport-security"));
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok().map(str::to_string))
        .collect();
    assert!(!cookies.is_empty());
    for c in &cookies {
        assert!(
            c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
    // Plain HTTP to a TLS listener gets nothing.
    assert!(reqwest::get(format!("http://{addr}/readyz")).await.is_err());
    // The admin token still works over HTTPS.
    let token = std::fs::read_to_string(&p.platform.endpoints.admin_token_file)?;
    let apis = http
        .get(format!("{base}/api/v1/apis"))
        .bearer_auth(token.trim())
        .send()
        .await?;
    assert_eq!(apis.status(), 200);
    Ok(())
}

#[tokio::test]
async fn a_broken_certificate_stops_the_start_naming_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = TlsFiles {
        cert_file: write(dir.path(), "bad.pem", "not a certificate"),
        key_file: write(dir.path(), "bad.key", "not a key"),
        client_ca_file: None,
    };
    let started = TestPlatform::start_with(move |c| {
        c.environments[0].external_options.tls = Some(files.clone());
    })
    .await;
    let err = started.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("development external"), "{err}");
    assert!(err.contains("bad.pem"), "{err}");
    Ok(())
}
