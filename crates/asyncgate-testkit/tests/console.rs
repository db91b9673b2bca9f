//! The web console over real sockets: forms refused without their CSRF token, sessions in
//! HttpOnly SameSite=Strict cookies ended on the server at sign-out, the first-visit
//! **Create** closed once the installation has a user, and the guide's flow clicked
//! through in Debian's Chromium (`scripts/browser`, `tests/browser/console.mjs`), a
//! screenshot per step in target/screenshots/console.

use asyncgate_testkit::{sample_contract_path, Backend, FileServer, TestPlatform};
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Response, StatusCode};
use std::path::Path;
use std::process::Command;

/// A browser-less visitor: no redirects followed, cookies kept by hand.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Visitor {
    fn new(base: &str) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keep the cookies a response sets; the Set-Cookie lines, for checking.
    fn keep(&mut self, res: &Response) -> Vec<String> {
        let lines: Vec<String> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for line in &lines {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        lines
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<(Response, Vec<String>)> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await?;
        let set = self.keep(&res);
        Ok((res, set))
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<(Response, Vec<String>)> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await?;
        let set = self.keep(&res);
        Ok((res, set))
    }
}

fn location(res: &Response) -> &str {
    res.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The value of the form's hidden CSRF field in a page.
fn csrf_field(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_sessions_live_in_strict_cookies() -> anyhow::Result<()> {
    let p = TestPlatform::start().await?;
    let token = std::fs::read_to_string(&p.platform.endpoints.admin_token_file)?;
    let mut v = Visitor::new(p.management());

    // A fresh installation: the console opens on Create.
    let (res, set) = v.get("/console/").await?;
    assert_eq!(
        (res.status(), location(&res)),
        (StatusCode::SEE_OTHER, "/console/create")
    );
    let csrf_cookie = set
        .iter()
        .find(|l| l.starts_with("asyncgate_csrf="))
        .expect("a CSRF cookie");
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"),
        "{csrf_cookie}"
    );
    let (res, set) = v.get("/console/create").await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        set.is_empty(),
        "the visitor keeps their CSRF token: {set:?}"
    );
    let csp = res.headers()[CONTENT_SECURITY_POLICY].to_str()?.to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let csrf = csrf_field(&res.text().await?);

    // Without the token (as a forged cross-site form would be), nothing is created.
    let create = [
        ("name", "Stark Industries"),
        ("email", "tony@stark.example"),
        ("password", "correct horse battery"),
        ("token", token.trim()),
    ];
    let (res, _) = v.post("/console/create", &create).await?;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await?.contains("came from another site"));
    let (res, _) = v.get("/console/create").await?;
    assert_eq!(res.status(), StatusCode::OK, "still no organization");

    // A wrong setup token is refused on the form, with what was typed kept.
    let mut wrong = create.to_vec();
    wrong[3] = ("token", "not-the-token");
    wrong.push(("csrf", &csrf));
    let (res, _) = v.post("/console/create", &wrong).await?;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await?;
    assert!(html.contains("setup token") && html.contains(r#"value="Stark Industries""#));

    // Create: signed in by an HttpOnly, SameSite=Strict session cookie.
    let mut right = create.to_vec();
    right.push(("csrf", &csrf));
    let (res, set) = v.post("/console/create", &right).await?;
    assert_eq!(
        (res.status(), location(&res)),
        (StatusCode::SEE_OTHER, "/console/home")
    );
    let session = set
        .iter()
        .find(|l| l.starts_with("asyncgate_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let (res, _) = v.get("/console/home").await?;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await?;
    assert!(html.contains("Project Home") && html.contains("Stark Industries"));

    // Create is closed now, whatever is posted.
    let (res, _) = v.get("/console/create").await?;
    assert_eq!(location(&res), "/console/sign-in");
    let (res, _) = v.post("/console/create", &right).await?;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let orgs = p.client.get("/organizations").await?;
    assert_eq!(
        orgs.as_array().map(Vec::len),
        Some(2),
        "the default organization and Stark Industries: {orgs}"
    );

    // Import API Contract with a file: Next shows the derived values (the contract
    // carried in the form), Create makes the API proxy. Without the CSRF token, nothing.
    let contract = std::fs::read_to_string(sample_contract_path())?;
    let upload = |csrf: &str| {
        reqwest::multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("source", "file")
            .part(
                "contract",
                reqwest::multipart::Part::text(contract.clone()).file_name("asyncapi.yaml"),
            )
    };
    let post_upload = |form: reqwest::multipart::Form| {
        v.http
            .post(format!("{}/console/import", v.base))
            .header(COOKIE, v.cookie_header())
            .multipart(form)
            .send()
    };
    let res = post_upload(upload("forged")).await?;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A broken contract is answered on the form with the contract engine's errors at
    // their line.
    let broken = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("source", "file")
        .part(
            "contract",
            reqwest::multipart::Part::text(
                "asyncapi: '2.0.0'\ninfo:\n  title: Chat\nchannels: 5\n",
            )
            .file_name("asyncapi.yaml"),
        );
    let res = post_upload(broken).await?;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await?;
    assert!(html.contains("line 4"), "the error names its line: {html}");
    let res = post_upload(upload(&csrf)).await?;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await?;
    assert!(
        html.contains("Create an API Proxy") && html.contains(r#"name="contract""#),
        "{html}"
    );
    let (res, _) = v
        .post(
            "/console/import/create",
            &[
                ("csrf", &csrf),
                ("contract", &contract),
                ("name", "Uploaded chat"),
                ("identifier", "uploaded-chat"),
                ("version", "1.0.0"),
                ("target", "ws://127.0.0.1:9/chat"),
            ],
        )
        .await?;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with("/console/apis/api_"),
        "{}",
        location(&res)
    );

    // Sign out ends the session on the server: its cookie no longer opens a page.
    let stolen = v.cookies.clone();
    let (res, _) = v.post("/console/sign-out", &[("csrf", &csrf)]).await?;
    assert_eq!(location(&res), "/console/sign-in");
    v.cookies = stolen;
    let (res, _) = v.get("/console/home").await?;
    assert_eq!(location(&res), "/console/sign-in");
    p.shutdown().await;
    Ok(())
}

/// Sign `v` in through the console's form as `email`.
async fn sign_in(v: &mut Visitor, email: &str, password: &str) -> anyhow::Result<()> {
    let (res, _) = v.get("/console/sign-in").await?;
    let csrf = csrf_field(&res.text().await?);
    let (res, _) = v
        .post(
            "/console/sign-in",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await?;
    anyhow::ensure!(
        res.status() == StatusCode::SEE_OTHER,
        "sign-in: {}",
        res.status()
    );
    Ok(())
}

#[tokio::test]
async fn the_gateway_nodes_page_shows_each_node_to_the_platforms_admins() -> anyhow::Result<()> {
    let p = TestPlatform::start().await?;
    // A node calls with its token (as `asyncgate gateway` does).
    let token = p
        .client
        .post(
            "/nodes/tokens",
            &serde_json::json!({"environment": "production"}),
        )
        .await?["token"]
        .as_str()
        .unwrap()
        .to_string();
    let synced = reqwest::Client::new()
        .post(format!("{}/api/v1/nodes/sync?wait=0", p.management()))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"id": "node-a", "environment": "production", "hostname": "edge-1",
            "appliedVersion": 0, "connections": 2, "state": "serving"}),
        )
        .send()
        .await?;
    assert_eq!(synced.status(), StatusCode::OK);
    // An admin of the platform's own organization, and a publisher of it.
    for (email, role) in [
        ("ops@example.org", "admin"),
        ("pub@example.org", "publisher"),
    ] {
        p.client
            .post(
                "/users",
                &serde_json::json!({"email": email, "password": "correct horse battery", "role": role}),
            )
            .await?;
    }
    let mut admin = Visitor::new(p.management());
    sign_in(&mut admin, "ops@example.org", "correct horse battery").await?;
    let (res, _) = admin.get("/console/nodes").await?;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await?;
    for shown in ["node-a", "edge-1", "production", "serving", "behind"] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let mut publisher = Visitor::new(p.management());
    sign_in(&mut publisher, "pub@example.org", "correct horse battery").await?;
    let (res, _) = publisher.get("/console/nodes").await?;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    p.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_console_is_clicked_through_in_chromium() -> anyhow::Result<()> {
    let p = TestPlatform::start().await?;
    let token = std::fs::read_to_string(&p.platform.endpoints.admin_token_file)?;
    let backend = Backend::chat().await?;
    let contract = std::fs::read_to_string(sample_contract_path())?;
    let files = FileServer::serve("/chat/asyncapi.yaml", contract).await?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shots = root.join("target/screenshots/console");
    let base = p.management().to_string();
    let (contract_url, target) = (files.url.clone(), backend.url.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(root.join("scripts/browser"))
            .arg("console.mjs")
            .env("CONSOLE", base)
            .env("SETUP_TOKEN", token.trim())
            .env("CONTRACT_URL", contract_url)
            .env("TARGET", target)
            .env("SHOTS", shots)
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed (scripts/browser installs Chromium, Node.js and playwright-core):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#"{"done":true}"#), "{stdout}");
    p.shutdown().await;
    Ok(())
}
