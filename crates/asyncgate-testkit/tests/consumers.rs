//! Consumers at the gateway, over real sockets: applications subscribed on a plan, their
//! API keys per environment and their OAuth2 tokens (client credentials, verified against
//! the JWKS), the order of the gateway's checks, key rotation, plan limits, and live
//! connections closed when a key, a subscription, an application or a user goes.

use asyncgate::client::Client;
use asyncgate_testkit::{Backend, TestPlatform, WsClient};
use serde_json::{json, Value};

struct Setup {
    gw: TestPlatform,
    _echo: Backend,
    /// development external URL of the sample API
    url: String,
    app: Value,
}

/// The sample API deployed to development and published; an application subscribed to
/// it on `plan`.
async fn setup(plan: &str) -> anyhow::Result<Setup> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&echo.url).await?;
    let url = gw.deploy("chat-api", "development", "external").await?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let app = gw
        .client
        .post("/applications", &json!({ "name": "Chat App" }))
        .await?;
    // Not yet published: no subscriptions.
    let e = gw
        .client
        .post(
            &format!(
                "/applications/{}/subscriptions",
                app["id"].as_str().unwrap_or_default()
            ),
            &json!({ "api": "chat-api" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("HTTP 409") && e.contains("Published"), "{e}");
    gw.client
        .post("/apis/chat-api/lifecycle", &json!({ "action": "publish" }))
        .await?;
    let sub = gw
        .client
        .post(
            &format!(
                "/applications/{}/subscriptions",
                app["id"].as_str().unwrap_or_default()
            ),
            &json!({ "api": "chat-api", "plan": plan }),
        )
        .await?;
    assert_eq!(sub["plan"], plan);
    Ok(Setup {
        gw,
        _echo: echo,
        url,
        app,
    })
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_default()
}

async fn app_key(gw: &TestPlatform, app: &Value, env: &str) -> anyhow::Result<Value> {
    gw.client
        .post(
            &format!("/applications/{}/keys", id(app)),
            &json!({ "environment": env }),
        )
        .await
}

/// An access token by the client-credentials grant, with HTTP Basic client authentication.
async fn token(gw: &TestPlatform, client_id: &str, secret: &str) -> anyhow::Result<(u16, Value)> {
    scoped_token(gw, client_id, secret, "chat").await
}

/// The same, asking for `scope`.
async fn scoped_token(
    gw: &TestPlatform,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> anyhow::Result<(u16, Value)> {
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth2/token", gw.management()))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

#[tokio::test]
async fn an_application_connects_with_its_key_or_its_token_and_only_where_subscribed(
) -> anyhow::Result<()> {
    let s = setup("Unlimited").await?;
    let (gw, url) = (&s.gw, &s.url);
    let key = app_key(gw, &s.app, "development").await?;
    let key = key["key"].as_str().unwrap_or_default().to_string();
    assert!(key.starts_with("agk_"));

    // The key works in its environment, in a header or the query; never reaches the backend.
    for (u, headers) in [
        (url.clone(), vec![("api-key", key.as_str())]),
        (format!("{url}?apikey={key}"), vec![]),
    ] {
        let mut c = WsClient::connect(&u, &headers).await?;
        let seen = c.recv_json().await?;
        assert!(!seen.to_string().contains(&key), "{seen}");
        c.send_text("hello").await?;
        assert_eq!(c.recv_text().await?, "hello");
        c.close().await;
    }

    // The OAuth2 token: issued for the client credentials, verifiable with the JWKS.
    let (status, issued) = token(
        gw,
        s.app["clientId"].as_str().unwrap_or_default(),
        s.app["clientSecret"].as_str().unwrap_or_default(),
    )
    .await?;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["token_type"], "Bearer");
    let access = issued["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let discovery: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        gw.management()
    ))
    .await?
    .json()
    .await?;
    assert_eq!(discovery["issuer"], gw.management());
    let jwks: Value = reqwest::get(discovery["jwks_uri"].as_str().unwrap_or_default())
        .await?
        .json()
        .await?;
    let header = jsonwebtoken::decode_header(&access)?;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("the token's key is in the JWKS");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[gw.management()]);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        &access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk)?,
        &validation,
    )?
    .claims;
    assert_eq!(claims["client_id"], s.app["clientId"]);
    assert_eq!(claims["scope"], "chat");
    assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
    for (u, headers) in [
        (
            url.clone(),
            vec![("authorization", format!("Bearer {access}"))],
        ),
        (format!("{url}?access_token={access}"), vec![]),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut c = WsClient::connect(&u, &headers).await?;
        let seen = c.recv_json().await?;
        assert!(!seen.to_string().contains(&access), "{seen}");
        c.close().await;
    }

    // Refusals, each before any upgrade and saying what was wrong.
    let prod_key = app_key(gw, &s.app, "production").await?;
    let other = gw
        .client
        .post("/applications", &json!({ "name": "Unsubscribed" }))
        .await?;
    let other_key = app_key(gw, &other, "development").await?;
    let (_, other_token) = token(
        gw,
        other["clientId"].as_str().unwrap_or_default(),
        other["clientSecret"].as_str().unwrap_or_default(),
    )
    .await?;
    let other_token = format!(
        "Bearer {}",
        other_token["access_token"].as_str().unwrap_or_default()
    );
    let tampered = format!("Bearer {}x", access.trim_end_matches(|c: char| c != '.'));
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("api-key", prod_key["key"].as_str().unwrap_or_default())],
            401,
            "production environment",
        ),
        (
            vec![("api-key", other_key["key"].as_str().unwrap_or_default())],
            403,
            "not subscribed",
        ),
        (
            vec![("authorization", other_token.as_str())],
            403,
            "not subscribed",
        ),
        (
            vec![("authorization", tampered.as_str())],
            401,
            "invalid_token",
        ),
    ];
    for (headers, status, says) in cases {
        let r = WsClient::refused(url, &headers).await?;
        assert_eq!(r.status, status, "{headers:?}: {}", r.body);
        assert!(r.body.contains(says), "{}", r.body);
    }
    // Wrong client secrets get RFC 6749 errors.
    let (status, e) = token(gw, s.app["clientId"].as_str().unwrap_or_default(), "wrong").await?;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    Ok(())
}

#[tokio::test]
async fn rotated_keys_keep_issued_tokens_valid_and_sign_new_ones() -> anyhow::Result<()> {
    let s = setup("Unlimited").await?;
    let (client_id, secret) = (
        s.app["clientId"].as_str().unwrap_or_default(),
        s.app["clientSecret"].as_str().unwrap_or_default(),
    );
    let old = token(&s.gw, client_id, secret).await?.1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rotated = s.gw.client.post("/signing-keys/rotate", &json!({})).await?;
    let new = token(&s.gw, client_id, secret).await?.1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&new)?.kid.as_deref(),
        rotated["kid"].as_str()
    );
    assert_ne!(
        jsonwebtoken::decode_header(&old)?.kid,
        jsonwebtoken::decode_header(&new)?.kid
    );
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", s.gw.management()))
        .await?
        .json()
        .await?;
    assert_eq!(
        jwks["keys"].as_array().map(Vec::len),
        Some(2),
        "current and previous: {jwks}"
    );
    assert!(
        !jwks.to_string().contains("\"d\""),
        "no private part in the JWKS"
    );
    for t in [&old, &new] {
        let bearer = format!("Bearer {t}");
        WsClient::connect(&s.url, &[("authorization", &bearer)])
            .await?
            .close()
            .await;
    }
    // Only the operator rotates.
    let sue = s.gw.client.post("/users", &json!({ "email": "sue@example.org", "password": "sue's long password", "role": "admin" })).await?;
    assert_eq!(sue["role"], "admin");
    let session = Client::new(s.gw.management(), "")
        .post(
            "/login",
            &json!({ "email": "sue@example.org", "password": "sue's long password" }),
        )
        .await?;
    let sue = Client::new(
        s.gw.management(),
        session["token"].as_str().unwrap_or_default(),
    );
    assert!(sue
        .post("/signing-keys/rotate", &json!({}))
        .await
        .unwrap_err()
        .to_string()
        .starts_with("HTTP 403"));
    Ok(())
}

#[tokio::test]
async fn live_connections_close_when_their_key_subscription_application_or_user_goes(
) -> anyhow::Result<()> {
    let s = setup("Unlimited").await?;
    let gw = &s.gw;
    // An application owned by a subscriber, to block the user.
    gw.client.post("/users", &json!({ "email": "dev@example.org", "password": "dev's long password", "role": "subscriber" })).await?;
    let session = Client::new(gw.management(), "")
        .post(
            "/login",
            &json!({ "email": "dev@example.org", "password": "dev's long password" }),
        )
        .await?;
    let dev = Client::new(
        gw.management(),
        session["token"].as_str().unwrap_or_default(),
    );
    let devs_app = dev
        .post("/applications", &json!({ "name": "Dev's App" }))
        .await?;
    dev.post(
        &format!("/applications/{}/subscriptions", id(&devs_app)),
        &json!({ "api": "chat-api" }),
    )
    .await?;
    let devs_key = dev
        .post(
            &format!("/applications/{}/keys", id(&devs_app)),
            &json!({ "environment": "development" }),
        )
        .await?;

    let key = app_key(gw, &s.app, "development").await?;
    let spare = app_key(gw, &s.app, "development").await?;
    let connect = |k: &Value| {
        let k = k["key"].as_str().unwrap_or_default().to_string();
        let url = s.url.clone();
        async move {
            let mut c = WsClient::with_key(&url, &k).await?;
            c.recv_json().await?;
            anyhow::Ok(c)
        }
    };
    let refused = |k: &Value| {
        let k = k["key"].as_str().unwrap_or_default().to_string();
        let url = s.url.clone();
        async move { anyhow::Ok(WsClient::refused(&url, &[("api-key", &k)]).await?.status) }
    };

    // A revoked key: its connection closes with 1008, the application's other key lives on.
    let (mut revoked, mut kept) = (connect(&key).await?, connect(&spare).await?);
    gw.client
        .delete(&format!("/applications/{}/keys/{}", id(&s.app), id(&key)))
        .await?;
    assert_eq!(
        revoked.recv_close().await?,
        (1008, "API key revoked".into())
    );
    assert_eq!(refused(&key).await?, 401);
    kept.send_text("still here").await?;
    assert_eq!(kept.recv_text().await?, "still here");

    // The subscription deleted: every connection of the application closes.
    gw.client
        .delete(&format!(
            "/applications/{}/subscriptions/chat-api",
            id(&s.app)
        ))
        .await?;
    assert_eq!(
        kept.recv_close().await?,
        (1008, "subscription ended or application blocked".into())
    );
    assert_eq!(refused(&spare).await?, 403);

    // The user who owns an application blocked: closed, and refused from then on.
    let mut devs = connect(&devs_key).await?;
    gw.client
        .patch("/users/dev@example.org", &json!({ "blocked": true }))
        .await?;
    assert_eq!(devs.recv_close().await?.0, 1008);
    assert_eq!(refused(&devs_key).await?, 401);
    gw.client
        .patch("/users/dev@example.org", &json!({ "blocked": false }))
        .await?;
    let mut devs = connect(&devs_key).await?;
    // The application blocked by an admin: the same.
    gw.client
        .patch(
            &format!("/applications/{}", id(&devs_app)),
            &json!({ "blocked": true }),
        )
        .await?;
    assert_eq!(devs.recv_close().await?.0, 1008);
    assert_eq!(refused(&devs_key).await?, 401);
    // A subscriber cannot unblock their own application.
    let e = dev
        .patch(
            &format!("/applications/{}", id(&devs_app)),
            &json!({ "blocked": false }),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("HTTP 403"), "{e}");
    Ok(())
}

#[tokio::test]
async fn a_plans_connection_limit_refuses_with_429_per_subscription() -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let plan = gw
        .client
        .post("/plans", &json!({ "name": "Two", "maxConnections": 2 }))
        .await?;
    assert_eq!(plan["limits"]["maxConnections"], 2);
    let e = gw
        .client
        .post("/plans", &json!({ "name": "Two" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("HTTP 409"), "{e}");
    let (api, url) = gw.publish_sample(&echo.url).await?;
    let other = gw
        .client
        .post("/applications", &json!({ "name": "Other" }))
        .await?;
    let e = gw
        .client
        .post(
            &format!("/applications/{}/subscriptions", id(&other)),
            &json!({ "api": "chat-api", "plan": "Platinum" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no plan `Platinum`") && e.contains("Two"), "{e}");
    let keys = [
        gw.subscribed_app("A", "Two").await?.1,
        gw.subscribed_app("B", "Two").await?.1,
    ];
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(WsClient::with_key(&url, &keys[0]).await?);
    }
    let r = WsClient::refused(&url, &[("api-key", &keys[0])]).await?;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("plan_connection_limit"), "{}", r.body);
    // Another subscription has its own count; a closed connection frees its slot.
    open.push(WsClient::with_key(&url, &keys[1]).await?);
    open.remove(0).close().await;
    asyncgate_testkit::eventually("the slot is freed", || {
        gw.platform.gateway().live().count("development", &api) == 2
    })
    .await?;
    WsClient::with_key(&url, &keys[0]).await?.close().await;
    Ok(())
}

#[tokio::test]
async fn the_gateway_checks_in_order_and_takes_credentials_where_browsers_can_send_them(
) -> anyhow::Result<()> {
    let s = setup("Unlimited").await?;
    let (gw, url) = (&s.gw, &s.url);
    let (client_id, secret) = (
        s.app["clientId"].as_str().unwrap_or_default(),
        s.app["clientSecret"].as_str().unwrap_or_default(),
    );
    let access = token(gw, client_id, secret).await?.1["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = app_key(gw, &s.app, "development").await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let other = gw
        .client
        .post("/applications", &json!({ "name": "Unsubscribed" }))
        .await?;
    let other_key = app_key(gw, &other, "development").await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The API's own key header, allowed origins; applied by the next deploy.
    gw.client
        .patch("/apis/chat-api", &json!({ "security": { "apiKeyHeader": "X-Chat-Key", "allowedOrigins": ["https://chat.example.com"] } }))
        .await?;
    let e = gw
        .client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "allowedOrigins": ["chat.example.com/x"] } }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an origin"), "{e}");
    let e = gw
        .client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "apiKeyHeader": "Host" } }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("set by the gateway"), "{e}");
    gw.deploy("chat-api", "development", "external").await?;

    // Each check in its order: route 404, credential 401, subscription 403, origin 403.
    let missing = format!(
        "{}/nowhere",
        url.rsplit_once('/').map(|(a, _)| a).unwrap_or(url)
    );
    let bad_origin = ("origin", "https://evil.example.com");
    type Check<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Check> = vec![
        (missing, vec![bad_origin], 404, "no_"),
        (url.clone(), vec![bad_origin], 401, "missing_credentials"),
        (
            url.clone(),
            vec![("x-chat-key", &other_key), bad_origin],
            403,
            "not_subscribed",
        ),
        (
            url.clone(),
            vec![("x-chat-key", &key), bad_origin],
            403,
            "origin_not_allowed",
        ),
    ];
    for (u, headers, status, code) in cases {
        let r = WsClient::refused(&u, &headers).await?;
        assert_eq!(
            (r.status, r.body.contains(code)),
            (status, true),
            "{u} {headers:?}: {}",
            r.body
        );
    }
    // The API's own header and the default both carry keys; neither reaches the backend.
    for name in ["x-chat-key", "api-key"] {
        let mut c =
            WsClient::connect(url, &[(name, &key), ("origin", "https://chat.example.com")]).await?;
        let seen = c.recv_json().await?;
        assert!(!seen.to_string().contains(&key), "{seen}");
        c.close().await;
    }
    // Clients that are not browsers send no Origin and are not affected by the list.
    WsClient::connect(url, &[("x-chat-key", &key)])
        .await?
        .close()
        .await;

    // A browser's carrier: the credential as a subprotocol. The backend sees only the
    // other offers; the client gets the backend's choice, or its credential entry back.
    let offer = format!("chat, access_token.{access}");
    let mut c = WsClient::connect(url, &[("sec-websocket-protocol", &offer)]).await?;
    assert_eq!(c.protocol.as_deref(), Some("chat"));
    let seen = c.recv_json().await?;
    assert_eq!(seen["headers"]["sec-websocket-protocol"], "chat");
    assert!(!seen.to_string().contains(&access));
    c.close().await;
    let only = format!("apikey.{key}");
    let mut c = WsClient::connect(url, &[("sec-websocket-protocol", &only)]).await?;
    assert_eq!(c.protocol.as_deref(), Some(only.as_str()));
    let seen = c.recv_json().await?;
    assert!(
        seen["headers"].get("sec-websocket-protocol").is_none(),
        "{seen}"
    );
    c.close().await;

    // Scopes an API requires: a token without them gets 403 (after its subscription was
    // checked); API keys carry none and are not affected.
    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "requiredScopes": ["chat:write"] } }),
        )
        .await?;
    let e = gw
        .client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "requiredScopes": ["two words"] } }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a scope"), "{e}");
    gw.deploy("chat-api", "development", "external").await?;
    let r = WsClient::refused(url, &[("authorization", &format!("Bearer {access}"))]).await?;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("insufficient_scope") && r.body.contains("chat:write"),
        "{}",
        r.body
    );
    let writer = scoped_token(gw, client_id, secret, "chat:read chat:write")
        .await?
        .1;
    let writer = format!(
        "Bearer {}",
        writer["access_token"].as_str().unwrap_or_default()
    );
    WsClient::connect(url, &[("authorization", &writer)])
        .await?
        .close()
        .await;
    WsClient::connect(url, &[("x-chat-key", &key)])
        .await?
        .close()
        .await;

    // Security off, only when said: anyone may connect; switched on again, the open
    // connections without a credential close.
    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "enabled": false } }),
        )
        .await?;
    gw.deploy("chat-api", "development", "external").await?;
    let mut open = WsClient::connect(url, &[]).await?;
    open.recv_json().await?;
    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "enabled": true } }),
        )
        .await?;
    gw.deploy("chat-api", "development", "external").await?;
    assert_eq!(
        open.recv_close().await?,
        (1008, "the API now requires credentials".into())
    );
    assert_eq!(WsClient::refused(url, &[]).await?.status, 401);
    Ok(())
}

#[tokio::test]
async fn a_plans_message_rate_closes_the_connection_or_drops_messages_as_the_plan_says(
) -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::Message;
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    // Three frames a minute, either direction: a burst of ten is over it however slowly
    // the test runs (the bucket refills one frame every 20 seconds).
    gw.client
        .post(
            "/plans",
            &json!({ "name": "Strict", "messagesPerMinute": 3 }),
        )
        .await?;
    gw.client
        .post(
            "/plans",
            &json!({ "name": "Lenient", "messagesPerMinute": 3, "onExcess": "drop" }),
        )
        .await?;
    let (api, url) = gw.publish_sample(&echo.url).await?;
    let keys = [
        gw.subscribed_app("Strict", "Strict").await?.1,
        gw.subscribed_app("Lenient", "Lenient").await?.1,
    ];

    // Close: the client is told which limit with 1008.
    let mut strict = WsClient::with_key(&url, &keys[0]).await?;
    for i in 0..10 {
        if strict.send_text(&format!("message {i}")).await.is_err() {
            break;
        }
    }
    assert_eq!(
        strict.recv_close().await?,
        (1008, "over the plan's message or byte rate".into())
    );

    // Drop: messages over the rate are not forwarded and are counted; the connection
    // stays open (control frames are not metered: a ping still gets its pong).
    let mut lenient = WsClient::with_key(&url, &keys[1]).await?;
    for i in 0..10 {
        lenient.send_text(&format!("message {i}")).await?;
    }
    asyncgate_testkit::eventually("messages over the rate are dropped", || {
        gw.platform.gateway().live().dropped("development", &api) >= 6
    })
    .await?;
    lenient
        .send(Message::Ping(b"still there?".to_vec().into()))
        .await?;
    loop {
        match lenient.next_any().await? {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"still there?");
                break;
            }
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_backend_learns_who_called_from_a_signed_assertion_only_when_asked(
) -> anyhow::Result<()> {
    let s = setup("Unlimited").await?;
    let (gw, url) = (&s.gw, &s.url);
    let key = app_key(gw, &s.app, "development").await?["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let forged = ("x-jwt-assertion", "forged.by.client");
    // Off (the default): nothing is sent, and a client's own is removed.
    let mut c = WsClient::connect(url, &[("api-key", &key), forged]).await?;
    let seen = c.recv_json().await?;
    assert!(seen["headers"].get("x-jwt-assertion").is_none(), "{seen}");
    c.close().await;

    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "backendJwt": true } }),
        )
        .await?;
    gw.deploy("chat-api", "development", "external").await?;
    let mut c = WsClient::connect(url, &[("api-key", &key), forged]).await?;
    let seen = c.recv_json().await?;
    c.close().await;
    let assertion = seen["headers"]["x-jwt-assertion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(assertion, "forged.by.client");
    // Verifiable with the backend JWKS, and with nothing the gateway accepts from clients.
    let jwks: Value = reqwest::get(format!("{}/.well-known/backend-jwks.json", gw.management()))
        .await?
        .json()
        .await?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[gw.management()]);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        &assertion,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk)?,
        &validation,
    )?
    .claims;
    assert_eq!(claims["application"], s.app["id"]);
    assert_eq!(claims["credential"], "api-key");
    assert_eq!(claims["environment"], "development");
    let api_id = gw.client.get("/apis/chat-api").await?["id"].clone();
    assert_eq!(claims["aud"], api_id);
    assert!(!assertion.contains(&key));
    let client_keys: Value = reqwest::get(format!("{}/.well-known/jwks.json", gw.management()))
        .await?
        .json()
        .await?;
    assert!(!client_keys
        .to_string()
        .contains(jwk.common.key_id.as_deref().unwrap_or("-")));
    // Presented by a client, the assertion is no credential.
    let r = WsClient::refused(url, &[("authorization", &format!("Bearer {assertion}"))]).await?;
    assert_eq!(r.status, 401, "{}", r.body);
    Ok(())
}
