//! Organizations, users and roles through the management API of a real platform:
//! isolation between organizations (404) and between roles (403) on every route that
//! takes an id, sessions and personal tokens, blocking, and an audit log that names the
//! user and holds no secret.

use asyncgate::client::Client;
use asyncgate_testkit::{TestPlatform, SAMPLE_CONTRACT};
use serde_json::{json, Value};

const ALICE: (&str, &str) = ("alice@stark.example", "alice's long password");
const PETE: (&str, &str) = ("pete@stark.example", "pete's long password");
const SUE: (&str, &str) = ("sue@stark.example", "sue's long password");
const BOB: (&str, &str) = ("bob@wayne.example", "bob's long password");

/// Two organizations: Stark Industries (alice admin, pete publisher, sue subscriber) and
/// Wayne Enterprises (bob admin), each with the sample API imported and deployed.
struct World {
    gw: TestPlatform,
    alice: Client,
    pete: Client,
    sue: Client,
    bob: Client,
    /// Stark's API id, and one of its deployments' key id.
    stark_api: String,
    stark_key: String,
    wayne_api: String,
}

async fn login(gw: &TestPlatform, (email, password): (&str, &str)) -> anyhow::Result<Client> {
    let anonymous = Client::new(gw.management(), "");
    let session = anonymous
        .post("/login", &json!({ "email": email, "password": password }))
        .await?;
    let token = session["token"].as_str().unwrap_or_default();
    assert!(token.starts_with("ags_"), "{session}");
    Ok(Client::new(gw.management(), token))
}

async fn org(gw: &TestPlatform, name: &str, admin: (&str, &str)) -> anyhow::Result<Value> {
    gw.client
        .post(
            "/organizations",
            &json!({ "name": name, "adminEmail": admin.0, "adminPassword": admin.1 }),
        )
        .await
}

async fn world() -> anyhow::Result<World> {
    let gw = TestPlatform::start().await?;
    let stark = org(&gw, "Stark Industries", ALICE).await?;
    assert_eq!(stark["handle"], "stark-industries");
    assert_eq!(stark["defaultProject"], "stark-industries");
    org(&gw, "Wayne Enterprises", BOB).await?;
    let alice = login(&gw, ALICE).await?;
    for (who, role) in [(PETE, "publisher"), (SUE, "subscriber")] {
        let added = alice
            .post(
                "/users",
                &json!({ "email": who.0, "password": who.1, "role": role }),
            )
            .await?;
        assert_eq!(added["role"], role);
        assert!(added.get("passwordHash").is_none() && !added.to_string().contains("argon2"));
    }
    let (pete, sue, bob) = (
        login(&gw, PETE).await?,
        login(&gw, SUE).await?,
        login(&gw, BOB).await?,
    );
    let import = json!({ "contract": SAMPLE_CONTRACT, "target": "ws://127.0.0.1:9" });
    let stark_api = pete.post("/apis/import", &import).await?;
    assert_eq!(stark_api["basePath"], "/stark-industries/chat-api/v1.0.0");
    let wayne_api = bob.post("/apis/import", &import).await?;
    assert_eq!(wayne_api["basePath"], "/wayne-enterprises/chat-api/v1.0.0");
    for (c, api) in [(&pete, &stark_api), (&bob, &wayne_api)] {
        let id = api["id"].as_str().unwrap_or_default();
        c.post(
            &format!("/apis/{id}/deployments"),
            &json!({ "environment": "development", "accessMode": "external" }),
        )
        .await?;
    }
    let key = pete
        .post(
            &format!(
                "/apis/{}/keys",
                stark_api["id"].as_str().unwrap_or_default()
            ),
            &json!({}),
        )
        .await?;
    Ok(World {
        stark_api: stark_api["id"].as_str().unwrap_or_default().to_string(),
        stark_key: key["id"].as_str().unwrap_or_default().to_string(),
        wayne_api: wayne_api["id"].as_str().unwrap_or_default().to_string(),
        gw,
        alice,
        pete,
        sue,
        bob,
    })
}

/// The status of a call, whatever it is.
async fn status(c: &Client, method: &str, path: &str, body: &Value) -> anyhow::Result<u16> {
    Ok(c.exchange(method.parse()?, path, Some(body)).await?.0)
}

#[tokio::test]
async fn every_route_with_an_id_is_closed_to_other_organizations_and_to_roles_without_the_right(
) -> anyhow::Result<()> {
    let w = world().await?;
    let alice_id = w.alice.get("/me").await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (api, key) = (w.stark_api.as_str(), w.stark_key.as_str());
    let sue_token = w.sue.post("/tokens", &json!({ "name": "ci" })).await?;
    let sue_token = sue_token["id"].as_str().unwrap_or_default().to_string();
    // (method, path, body, which Stark roles may: admin, publisher, subscriber)
    let routes: Vec<(&str, String, Value, [bool; 3])> = vec![
        (
            "GET",
            format!("/apis/{api}"),
            json!({}),
            [true, true, false],
        ),
        (
            "PATCH",
            format!("/apis/{api}"),
            json!({ "description": "edited" }),
            [true, true, false],
        ),
        (
            "GET",
            format!("/apis/{api}/revisions"),
            json!({}),
            [true, true, false],
        ),
        (
            "GET",
            format!("/apis/{api}/contract"),
            json!({}),
            [true, true, false],
        ),
        (
            "PUT",
            format!("/apis/{api}/contract"),
            json!({ "contract": SAMPLE_CONTRACT }),
            [true, true, false],
        ),
        (
            "GET",
            format!("/apis/{api}/deployments"),
            json!({}),
            [true, true, false],
        ),
        (
            "POST",
            format!("/apis/{api}/deployments"),
            json!({ "environment": "development", "accessMode": "external" }),
            [true, true, false],
        ),
        (
            "POST",
            format!("/apis/{api}/promote"),
            json!({ "from": "development", "to": "production" }),
            [true, true, false],
        ),
        (
            "GET",
            format!("/apis/{api}/lifecycle"),
            json!({}),
            [true, true, false],
        ),
        (
            "POST",
            format!("/apis/{api}/lifecycle"),
            json!({ "action": "pre-release" }),
            [true, true, false],
        ),
        (
            "GET",
            format!("/apis/{api}/keys"),
            json!({}),
            [true, true, false],
        ),
        (
            "POST",
            format!("/apis/{api}/keys"),
            json!({}),
            [true, true, false],
        ),
        (
            "POST",
            format!("/apis/{api}/test-token"),
            json!({ "environment": "development" }),
            [true, true, false],
        ),
        (
            "PATCH",
            format!("/users/{alice_id}"),
            json!({ "role": "admin" }),
            [true, false, false],
        ),
        (
            "GET",
            format!("/audit?api={api}"),
            json!({}),
            [true, false, false],
        ),
    ];
    for (method, path, body, allowed) in &routes {
        // Another organization's admin: not found, with or without naming Stark.
        assert_eq!(
            status(&w.bob, method, path, body).await?,
            404,
            "bob: {method} {path}"
        );
        let bob_in_stark = w.bob.clone().in_org(Some("stark-industries"));
        assert_eq!(
            status(&bob_in_stark, method, path, body).await?,
            404,
            "bob as stark: {method} {path}"
        );
        // Stark's own members: as their role allows.
        for (who, c, may) in [
            ("alice", &w.alice, allowed[0]),
            ("pete", &w.pete, allowed[1]),
            ("sue", &w.sue, allowed[2]),
        ] {
            let got = status(c, method, path, body).await?;
            if may {
                assert!(got < 400 || got == 409, "{who}: {method} {path} -> {got}");
            } else {
                assert_eq!(got, 403, "{who}: {method} {path}");
            }
        }
    }
    // Applications: their owner and the organization's admins; nobody else sees them.
    w.pete
        .post(
            &format!("/apis/{api}/lifecycle"),
            &json!({ "action": "publish" }),
        )
        .await?;
    let app = w
        .sue
        .post("/applications", &json!({ "name": "Sue's App" }))
        .await?;
    let app = app["id"].as_str().unwrap_or_default().to_string();
    let sub_path = format!("/applications/{app}/subscriptions");
    w.sue.post(&sub_path, &json!({ "api": api })).await?;
    let app_key = w
        .sue
        .post(
            &format!("/applications/{app}/keys"),
            &json!({ "environment": "development" }),
        )
        .await?;
    let app_key = app_key["id"].as_str().unwrap_or_default().to_string();
    // (method, path, body, the answers to the admin, the publisher (not the owner) and the
    // owner; the publisher and the owner call first, so a change the owner made is gone
    // for the admin)
    let app_routes: Vec<(&str, String, Value, [u16; 3])> = vec![
        (
            "GET",
            format!("/applications/{app}"),
            json!({}),
            [200, 404, 200],
        ),
        (
            "PATCH",
            format!("/applications/{app}"),
            json!({ "blocked": false }),
            [200, 404, 403],
        ),
        (
            "POST",
            format!("/applications/{app}/secret"),
            json!({}),
            [201, 404, 201],
        ),
        (
            "POST",
            sub_path.clone(),
            json!({ "api": api }),
            [409, 404, 409],
        ),
        (
            "POST",
            format!("/applications/{app}/keys"),
            json!({ "environment": "development" }),
            [201, 404, 201],
        ),
        (
            "POST",
            format!("/applications/{app}/keys/{app_key}/regenerate"),
            json!({}),
            [404, 404, 201],
        ),
        (
            "DELETE",
            format!("/applications/{app}/subscriptions/{api}"),
            json!({}),
            [404, 404, 204],
        ),
    ];
    for (method, path, body, expected) in &app_routes {
        assert_eq!(
            status(&w.bob, method, path, body).await?,
            404,
            "bob: {method} {path}"
        );
        let got = [
            status(&w.pete, method, path, body).await?,
            status(&w.sue, method, path, body).await?,
        ];
        let admin = status(&w.alice, method, path, body).await?;
        assert_eq!([admin, got[0], got[1]], *expected, "{method} {path}");
    }
    assert_eq!(status(&w.bob, "GET", "/plans", &json!({})).await?, 200);
    assert_eq!(
        status(&w.sue, "POST", "/plans", &json!({ "name": "Free" })).await?,
        403
    );
    assert_eq!(
        status(
            &w.bob,
            "DELETE",
            &format!("/applications/{app}"),
            &json!({})
        )
        .await?,
        404
    );
    assert_eq!(
        status(
            &w.pete,
            "DELETE",
            &format!("/applications/{app}"),
            &json!({})
        )
        .await?,
        404
    );
    assert_eq!(
        status(
            &w.sue,
            "DELETE",
            &format!("/applications/{app}"),
            &json!({})
        )
        .await?,
        204
    );

    // Identity providers: the organization's admins only.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let raw = pair.public_key_raw();
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "k", "x": b64(&raw[1..33]), "y": b64(&raw[33..]) }] });
    let jwks_server = asyncgate_testkit::FileServer::serve("/jwks", jwks.to_string()).await?;
    let idp_body = json!({ "name": "Corp", "issuer": "https://idp.example", "jwksUrl": jwks_server.url, "audience": "a" });
    assert_eq!(
        status(&w.pete, "POST", "/identity-providers", &idp_body).await?,
        403
    );
    let idp = w.alice.post("/identity-providers", &idp_body).await?;
    let idp_path = format!(
        "/identity-providers/{}",
        idp["id"].as_str().unwrap_or_default()
    );
    assert_eq!(status(&w.bob, "DELETE", &idp_path, &json!({})).await?, 404);
    assert_eq!(status(&w.pete, "DELETE", &idp_path, &json!({})).await?, 403);
    assert_eq!(
        status(&w.sue, "GET", "/identity-providers", &json!({})).await?,
        403
    );
    assert_eq!(
        w.bob
            .get("/identity-providers")
            .await?
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        status(&w.alice, "DELETE", &idp_path, &json!({})).await?,
        204
    );

    // Destructive routes last, each checked the same way.
    let destructive: Vec<(&str, String, [bool; 3])> = vec![
        (
            "DELETE",
            format!("/apis/{api}/keys/{key}"),
            [true, true, false],
        ),
        (
            "DELETE",
            format!("/apis/{api}/deployments/production"),
            [true, true, false],
        ),
        ("DELETE", format!("/users/{}", SUE.0), [true, false, false]),
        ("DELETE", format!("/apis/{api}"), [true, true, false]),
    ];
    for (method, path, allowed) in &destructive {
        assert_eq!(
            status(&w.bob, method, path, &json!({})).await?,
            404,
            "bob: {method} {path}"
        );
        for (who, c, may) in [("sue", &w.sue, allowed[2]), ("pete", &w.pete, allowed[1])] {
            if !may {
                assert_eq!(
                    status(c, method, path, &json!({})).await?,
                    403,
                    "{who}: {method} {path}"
                );
            }
        }
        assert!(
            status(&w.alice, method, path, &json!({})).await? < 400,
            "alice: {method} {path}"
        );
    }
    // A personal token is its owner's alone.
    assert_eq!(
        status(
            &w.alice,
            "DELETE",
            &format!("/tokens/{sue_token}"),
            &json!({})
        )
        .await?,
        404
    );
    // Lists show only the caller's organization.
    let bobs: Vec<Value> = w.bob.get_as("/apis").await?;
    assert!(
        bobs.iter().all(|a| a["id"] == w.wayne_api.as_str()),
        "{bobs:?}"
    );
    assert_eq!(status(&w.sue, "GET", "/apis", &json!({})).await?, 403);
    assert_eq!(status(&w.pete, "GET", "/users", &json!({})).await?, 403);
    assert_eq!(w.bob.get("/users").await?.as_array().map(Vec::len), Some(1));
    // The operator acts in any organization it names.
    let op_in_wayne = w.gw.client.clone().in_org(Some("wayne-enterprises"));
    assert_eq!(
        op_in_wayne.get(&format!("/apis/{}", w.wayne_api)).await?["id"],
        w.wayne_api.as_str()
    );
    assert_eq!(
        status(
            &w.gw.client,
            "GET",
            &format!("/apis/{}", w.wayne_api),
            &json!({})
        )
        .await?,
        404
    );
    Ok(())
}

#[tokio::test]
async fn sessions_tokens_and_blocking() -> anyhow::Result<()> {
    let w = world().await?;
    let anonymous = Client::new(w.gw.management(), "");
    for (email, password) in [
        (ALICE.0, "wrong password!"),
        ("nobody@stark.example", ALICE.1),
    ] {
        let e = anonymous
            .post("/login", &json!({ "email": email, "password": password }))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("HTTP 401"), "{e}");
    }
    let me = w.pete.get("/me").await?;
    assert_eq!(me["email"], PETE.0);
    assert_eq!(me["organizations"][0]["role"], "publisher");
    // A personal token works like a session, is listed by its first characters only and
    // stops working when revoked.
    let made = w
        .pete
        .post("/tokens", &json!({ "name": "ci", "expiresInDays": 30 }))
        .await?;
    let token = made["token"].as_str().unwrap_or_default().to_string();
    assert!(token.starts_with("agp_"));
    let by_token = Client::new(w.gw.management(), &token);
    assert_eq!(by_token.get("/me").await?["email"], PETE.0);
    let listed = w.pete.get("/tokens").await?;
    assert!(!listed.to_string().contains(&token), "{listed}");
    w.pete
        .delete(&format!(
            "/tokens/{}",
            made["id"].as_str().unwrap_or_default()
        ))
        .await?;
    assert!(by_token
        .get("/me")
        .await
        .unwrap_err()
        .to_string()
        .starts_with("HTTP 401"));
    // A blocked user's session stops at once and they cannot sign in again.
    w.alice
        .patch(&format!("/users/{}", PETE.0), &json!({ "blocked": true }))
        .await?;
    assert!(w
        .pete
        .get("/me")
        .await
        .unwrap_err()
        .to_string()
        .starts_with("HTTP 401"));
    let e = anonymous
        .post("/login", &json!({ "email": PETE.0, "password": PETE.1 }))
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("HTTP 401"), "{e}");
    // An admin cannot lock themselves out.
    let e = w
        .alice
        .patch(&format!("/users/{}", ALICE.0), &json!({ "blocked": true }))
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("HTTP 409"), "{e}");
    // Signing out ends the session.
    let alice2 = login(&w.gw, ALICE).await?;
    alice2.post("/logout", &json!({})).await?;
    assert!(alice2
        .get("/me")
        .await
        .unwrap_err()
        .to_string()
        .starts_with("HTTP 401"));
    // Bad input is refused with the rule it broke, and nothing is added.
    for (body, says) in [
        (
            json!({ "email": "not-an-email", "password": "long enough pw", "role": "publisher" }),
            "not an email",
        ),
        (
            json!({ "email": "new@stark.example", "password": "short", "role": "publisher" }),
            "too short",
        ),
        (
            json!({ "email": "new@stark.example", "role": "publisher" }),
            "give a password",
        ),
    ] {
        let e = w.alice.post("/users", &body).await.unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
    let e = w
        .alice
        .post(
            "/users",
            &json!({ "email": "x@stark.example", "password": "long enough pw", "role": "root" }),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 4"), "{e}");
    assert_eq!(
        w.alice.get("/users").await?.as_array().map(Vec::len),
        Some(3)
    );
    Ok(())
}

#[tokio::test]
async fn the_audit_log_names_the_user_and_never_a_secret() -> anyhow::Result<()> {
    let w = world().await?;
    let since = w.alice.get("/audit").await?[0]["at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let made = w
        .alice
        .post("/tokens", &json!({ "name": "automation" }))
        .await?;
    let key = w
        .pete
        .post(&format!("/apis/{}/keys", w.stark_api), &json!({}))
        .await?;
    // A failed sign-in is recorded for the user it tried, without the password tried.
    let wrong = "a wrong guess of pete's";
    Client::new(w.gw.management(), "")
        .post("/login", &json!({ "email": PETE.0, "password": wrong }))
        .await
        .unwrap_err();
    let audit = w.alice.get("/audit").await?;
    assert!(audit
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["action"] == "user.login_failed"
            && e["actor"] == PETE.0
            && e["origin"] == "127.0.0.1"));
    assert!(!audit.to_string().contains(wrong));
    let entries = audit.as_array().cloned().unwrap_or_default();
    let deploy = entries
        .iter()
        .find(|e| e["action"] == "api.deploy")
        .expect("a deploy entry");
    assert_eq!(deploy["actor"], PETE.0);
    assert_eq!(deploy["origin"], "127.0.0.1");
    assert_eq!(deploy["apiId"], w.stark_api.as_str());
    assert!(entries
        .iter()
        .any(|e| e["action"] == "user.add" && e["actor"] == ALICE.0));
    // Nothing of Wayne's is in Stark's log.
    assert!(!audit.to_string().contains(&w.wayne_api));
    assert!(!audit.to_string().contains(BOB.0));
    // Filters: by API, by user, by time.
    let by_api: Vec<Value> = w
        .alice
        .get_as(&format!("/audit?api={}", w.stark_api))
        .await?;
    assert!(!by_api.is_empty() && by_api.iter().all(|e| e["apiId"] == w.stark_api.as_str()));
    let by_user: Vec<Value> = w.alice.get_as(&format!("/audit?user={}", PETE.0)).await?;
    assert!(!by_user.is_empty() && by_user.iter().all(|e| e["actor"] == PETE.0));
    let recent: Vec<Value> = w.alice.get_as(&format!("/audit?since={since}")).await?;
    assert!(recent.len() < entries.len() && recent.iter().any(|e| e["action"] == "key.create"));
    let e = w
        .alice
        .get("/audit?since=yesterday")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("RFC 3339"), "{e}");
    // No secret anywhere in what the log or the lists show.
    let everything = format!(
        "{audit} {} {} {}",
        w.alice.get("/users").await?,
        w.alice.get("/tokens").await?,
        w.pete.get(&format!("/apis/{}/keys", w.stark_api)).await?
    );
    for secret in [
        ALICE.1,
        PETE.1,
        SUE.1,
        made["token"].as_str().unwrap_or("-"),
        key["key"].as_str().unwrap_or("-"),
        "$argon2",
    ] {
        assert!(!everything.contains(secret), "`{secret}` is shown");
    }
    Ok(())
}
