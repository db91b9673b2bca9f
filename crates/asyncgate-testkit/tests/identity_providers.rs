//! An organization's external identity provider: its tokens (ES256, verified with its
//! JWKS fetched through the guarded fetcher) are accepted like the platform's own for
//! subscribed applications; its key rotation is followed when a token names a new key.

use asyncgate_testkit::{Backend, FileServer, TestPlatform, WsClient, WAIT};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "chat-gateway";

/// An ES256 key of the provider: its signing key and its public JWK.
struct ProviderKey {
    kid: &'static str,
    signing: jsonwebtoken::EncodingKey,
    jwk: Value,
}

fn provider_key(kid: &'static str) -> anyhow::Result<ProviderKey> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let raw = pair.public_key_raw();
    anyhow::ensure!(
        raw.len() == 65 && raw[0] == 4,
        "an uncompressed P-256 point"
    );
    Ok(ProviderKey {
        kid,
        signing: jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk: json!({ "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                     "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..]) }),
    })
}

fn jwks(keys: &[&ProviderKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn token(key: &ProviderKey, claims: Value) -> anyhow::Result<String> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(key.kid.into());
    Ok(jsonwebtoken::encode(&header, &claims, &key.signing)?)
}

#[tokio::test]
async fn an_identity_providers_tokens_are_accepted_for_subscribed_applications(
) -> anyhow::Result<()> {
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    let (_, url) = gw.publish_sample(&echo.url).await?;
    let (app, _) = gw.subscribed_app("Corp App", "Unlimited").await?;
    gw.client
        .post("/applications", &json!({ "name": "Unsubscribed App" }))
        .await?;

    let (k1, k2) = (provider_key("k1")?, provider_key("k2")?);
    let idp_keys = FileServer::changing("/jwks.json", jwks(&[&k1])).await?;

    // What cannot be used is refused with the reason, and nothing is added.
    let not_jwks = FileServer::serve("/x", "{\"hello\": 1}".into()).await?;
    let secret = FileServer::serve(
        "/x",
        json!({ "keys": [{ "kty": "oct", "kid": "s", "k": "c2VjcmV0" }] }).to_string(),
    )
    .await?;
    for (server, says) in [(&not_jwks, "is not a JWKS"), (&secret, "shared secret")] {
        let e = gw
            .client
            .post("/identity-providers", &json!({ "name": "Bad", "issuer": ISSUER, "jwksUrl": server.url, "audience": AUDIENCE }))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{e}");
    }
    let idp = gw
        .client
        .post("/identity-providers", &json!({ "name": "Corp IdP", "issuer": ISSUER, "jwksUrl": idp_keys.url, "audience": AUDIENCE, "applicationClaim": "azp" }))
        .await?;
    assert_eq!(idp["keyIds"], json!(["k1"]));
    assert_eq!(
        gw.client
            .get("/identity-providers")
            .await?
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let claims = |azp: &str, aud: &str, exp: u64| json!({ "iss": ISSUER, "aud": aud, "sub": "svc", "azp": azp, "iat": unix_now(), "exp": exp });
    let later = unix_now() + 600;
    let good = token(&k1, claims("Corp App", AUDIENCE, later))?;
    let mut c = WsClient::connect(&url, &[("authorization", &format!("Bearer {good}"))]).await?;
    let seen = c.recv_json().await?;
    assert!(
        !seen.to_string().contains(&good),
        "the token never reaches the backend"
    );
    c.close().await;
    // The application may be named by its client id too.
    let by_id = token(
        &k1,
        claims(
            app["clientId"].as_str().unwrap_or_default(),
            AUDIENCE,
            later,
        ),
    )?;
    WsClient::connect(&url, &[("authorization", &format!("Bearer {by_id}"))])
        .await?
        .close()
        .await;

    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &claims("Corp App", AUDIENCE, later),
            &jsonwebtoken::EncodingKey::from_secret(b"k1"),
        )?
    };
    let cases = [
        (
            token(&k1, claims("Corp App", "someone-else", later))?,
            401,
            "invalid_token",
        ),
        (
            token(&k1, claims("Nobody's App", AUDIENCE, later))?,
            401,
            "names no usable application",
        ),
        (
            token(&k1, claims("Corp App", AUDIENCE, unix_now() - 600))?,
            401,
            "token_expired",
        ),
        (
            token(&k1, claims("Unsubscribed App", AUDIENCE, later))?,
            403,
            "not_subscribed",
        ),
        (hs256, 401, "invalid_token"),
    ];
    for (t, status, says) in cases {
        let r = WsClient::refused(&url, &[("authorization", &format!("Bearer {t}"))]).await?;
        assert_eq!(r.status, status, "{}", r.body);
        assert!(r.body.contains(says), "{}", r.body);
    }

    // Scopes the API requires are read from the provider's `scp` (or `scope`).
    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "requiredScopes": ["chat:write"] } }),
        )
        .await?;
    gw.deploy("chat-api", "development", "external").await?;
    let r = WsClient::refused(&url, &[("authorization", &format!("Bearer {good}"))]).await?;
    assert!(
        r.status == 403 && r.body.contains("insufficient_scope"),
        "{}",
        r.body
    );
    let mut scoped = claims("Corp App", AUDIENCE, later);
    scoped["scp"] = json!(["chat:read", "chat:write"]);
    let scoped = token(&k1, scoped)?;
    WsClient::connect(&url, &[("authorization", &format!("Bearer {scoped}"))])
        .await?
        .close()
        .await;
    gw.client
        .patch(
            "/apis/chat-api",
            &json!({ "security": { "requiredScopes": [] } }),
        )
        .await?;
    gw.deploy("chat-api", "development", "external").await?;

    // The provider rotates to a new key: the first token signed with it is refused and
    // makes the platform fetch the keys again; once it has, the token is accepted.
    idp_keys.set(jwks(&[&k2]));
    let rotated = token(&k2, claims("Corp App", AUDIENCE, later))?;
    let mut applied = gw.platform.gateway().applied();
    let before = *applied.borrow();
    let r = WsClient::refused(&url, &[("authorization", &format!("Bearer {rotated}"))]).await?;
    assert!(
        r.status == 401 && r.body.contains("fetched again"),
        "{}",
        r.body
    );
    // The event: the gateway applies the snapshot the refresh published.
    tokio::time::timeout(WAIT, applied.wait_for(|v| *v > before))
        .await
        .map_err(|_| anyhow::anyhow!("the provider's keys were never fetched again"))??;
    let listed = gw.client.get("/identity-providers").await?;
    assert_eq!(listed[0]["keyIds"], json!(["k2"]));
    WsClient::connect(&url, &[("authorization", &format!("Bearer {rotated}"))])
        .await?
        .close()
        .await;
    // The old key is gone with the provider's JWKS.
    let r = WsClient::refused(&url, &[("authorization", &format!("Bearer {good}"))]).await?;
    assert_eq!(r.status, 401, "{}", r.body);

    // Removed, the provider's tokens are refused.
    gw.client.delete("/identity-providers/Corp IdP").await?;
    let r = WsClient::refused(&url, &[("authorization", &format!("Bearer {rotated}"))]).await?;
    assert_eq!(r.status, 401, "{}", r.body);
    Ok(())
}
