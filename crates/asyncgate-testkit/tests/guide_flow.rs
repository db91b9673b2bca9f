//! The guide, end to end over real sockets: import (file and URL), deploy, chat through
//! development, promote, chat through production, publish, restart, still serving.

use asyncgate_testkit::{Backend, FileServer, TestPlatform, WsClient, SAMPLE_CONTRACT};
use serde_json::{json, Value};

fn connect_line(room: u64, count: u64, user: &str, total: u64) -> String {
    format!(
        r#"{{"type":"Connect","room":{room},"userCount":{count},"maxUsers":5,"status":"Online","username":"{user}","totalUsers":{total}}}"#
    )
}

#[tokio::test]
async fn the_guide_works_end_to_end_and_survives_a_restart() -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let gw = TestPlatform::start().await?;

    // Import from a file's contents, with only the target changed.
    let api = gw.import_sample(&chat.url).await?;
    assert_eq!(api["name"], "Chat API");
    assert_eq!(api["version"], "1.0.0");
    assert_eq!(api["identifier"], "chat-api");
    assert_eq!(api["basePath"], "/default/chat-api/v1.0.0");
    assert_eq!(api["target"], chat.url.as_str());
    assert_eq!(api["lifecycle"], "Created");
    assert_eq!(api["channels"][0]["address"], "/");

    // Import the same contract from an http URL served by the test, as a second API.
    let served = FileServer::serve(
        "/chat-service-api/asyncapi.yaml",
        SAMPLE_CONTRACT.to_string(),
    )
    .await?;
    let from_url = gw
        .client
        .post(
            "/apis/import",
            &json!({ "url": served.url, "identifier": "chat-api-url", "target": chat.url }),
        )
        .await?;
    assert_eq!(from_url["name"], "Chat API");
    assert_eq!(from_url["basePath"], "/default/chat-api-url/v1.0.0");
    // The same identifier twice is a conflict that loses nothing.
    let dup = gw.import_sample(&chat.url).await.unwrap_err().to_string();
    assert!(dup.contains("409") && dup.contains("chat-api"), "{dup}");

    // Deploy to development, External.
    let dev = gw.deploy("chat-api", "development", "external").await?;
    assert_eq!(dev["revision"], 1);
    assert_eq!(dev["accessMode"], "external");
    let dev_url = dev["url"].as_str().unwrap().to_string();
    assert_eq!(
        dev_url,
        format!(
            "{}/default/chat-api/v1.0.0",
            gw.listener("development", true)
        )
    );
    let key = gw.create_key("chat-api").await?;

    // Three users chat through the gateway; everyone sees exactly what the backend sent.
    let mut alice = WsClient::with_key(&dev_url, &key).await?;
    alice
        .send_text(r#"{"type":"Connect","username":"alice"}"#)
        .await?;
    assert_eq!(alice.recv_text().await?, connect_line(1, 1, "alice", 1));
    let mut bob = WsClient::with_key(&dev_url, &key).await?;
    bob.send_text(r#"{"type":"Connect","username":"bob"}"#)
        .await?;
    assert_eq!(alice.recv_text().await?, connect_line(1, 2, "bob", 2));
    assert_eq!(bob.recv_text().await?, connect_line(1, 2, "bob", 2));
    // The third user uses the browser-style query parameter.
    let mut carol = WsClient::connect(&format!("{dev_url}?apikey={key}"), &[]).await?;
    carol
        .send_text(r#"{"type":"Connect","username":"carol"}"#)
        .await?;
    for c in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(c.recv_text().await?, connect_line(1, 3, "carol", 3));
    }
    alice
        .send_text(r#"{"type":"Data","message":"hi all"}"#)
        .await?;
    assert_eq!(alice.recv_text().await?, "Message sent");
    let data = r#"{"type":"Data","from":"alice","message":"hi all","totalUsers":3}"#;
    assert_eq!(bob.recv_text().await?, data);
    assert_eq!(carol.recv_text().await?, data);
    carol.close().await;
    let gone: Value = alice.recv_json().await?;
    assert_eq!(gone["type"], "Disconnect");
    assert_eq!(gone["username"], "carol");
    assert_eq!(gone["userCount"], 2);

    // Promote the same revision; a client through production works.
    let prod = gw
        .client
        .post(
            "/apis/chat-api/promote",
            &json!({ "from": "development", "to": "production" }),
        )
        .await?;
    assert_eq!(prod["revision"], 1);
    assert_eq!(prod["accessMode"], "external");
    let prod_url = prod["url"].as_str().unwrap().to_string();
    assert!(prod_url.starts_with(&gw.listener("production", true)));
    let mut dave = WsClient::with_key(&prod_url, &key).await?;
    dave.send_text(r#"{"type":"Connect","username":"dave"}"#)
        .await?;
    let hello = dave.recv_json().await?;
    assert_eq!(hello["username"], "dave");
    assert_eq!(hello["userCount"], 3, "production reaches the same backend");
    dave.close().await;

    // Publish with a display name; the portal lists it without an admin token.
    let published = gw
        .client
        .post(
            "/apis/chat-api/lifecycle",
            &json!({ "action": "publish", "displayName": "Chat" }),
        )
        .await?;
    assert_eq!(published["lifecycle"], "Published");
    let portal: Value = reqwest::get(format!("{}/api/v1/portal/apis", gw.management()))
        .await?
        .json()
        .await?;
    let listed = portal.as_array().unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the published API is listed: {portal}"
    );
    assert_eq!(listed[0]["name"], "Chat");
    assert_eq!(listed[0]["endpoints"].as_array().unwrap().len(), 2);
    alice.close().await;
    bob.close().await;

    // Restart on the same data folder: everything is still there and reachable.
    let gw = gw.restart().await?;
    let shown = gw.client.get("/apis/chat-api").await?;
    assert_eq!(shown["lifecycle"], "Published");
    assert_eq!(shown["displayName"], "Chat");
    let deployments = shown["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0]["environment"], "development");
    assert_eq!(deployments[1]["environment"], "production");
    for d in deployments {
        let url = d["url"].as_str().unwrap();
        let mut c = WsClient::with_key(url, &key).await?;
        c.send_text(r#"{"type":"Connect","username":"after-restart"}"#)
            .await?;
        assert_eq!(c.recv_json().await?["username"], "after-restart");
        c.close().await;
    }
    assert_eq!(gw.client.get("/apis").await?.as_array().unwrap().len(), 2);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn redeploying_after_an_edit_makes_a_new_revision_and_promote_keeps_the_old_one(
) -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let echo = Backend::echo().await?;
    let gw = TestPlatform::start().await?;
    gw.import_sample(&chat.url).await?;
    assert_eq!(
        gw.deploy("chat-api", "development", "external").await?["revision"],
        1
    );
    // Deploying an unchanged design reuses the revision.
    assert_eq!(
        gw.deploy("chat-api", "development", "external").await?["revision"],
        1
    );
    gw.client
        .post(
            "/apis/chat-api/promote",
            &json!({ "from": "development", "to": "production" }),
        )
        .await?;

    // Edit the target and redeploy development only.
    gw.client
        .patch("/apis/chat-api", &json!({ "target": echo.url }))
        .await?;
    assert_eq!(
        gw.deploy("chat-api", "development", "external").await?["revision"],
        2
    );
    let key = gw.create_key("chat-api").await?;
    let shown = gw.client.get("/apis/chat-api").await?;
    let url_of = |env: &str| {
        shown["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["environment"] == env)
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Development now reaches the echo backend (which first describes the handshake)...
    let mut dev = WsClient::with_key(&url_of("development"), &key).await?;
    assert!(dev.recv_json().await?["headers"].is_object());
    // ...while production still runs revision 1 against the chat backend.
    let mut prod = WsClient::with_key(&url_of("production"), &key).await?;
    prod.send_text(r#"{"type":"Connect","username":"p"}"#)
        .await?;
    assert_eq!(prod.recv_json().await?["type"], "Connect");
    let revisions = gw.client.get("/apis/chat-api/revisions").await?;
    assert_eq!(revisions.as_array().unwrap().len(), 2);
    assert_eq!(revisions[0]["deployedTo"], json!(["production"]));
    assert_eq!(revisions[1]["deployedTo"], json!(["development"]));
    dev.close().await;
    prod.close().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_chat_backend_fills_rooms_of_five_then_opens_another() -> anyhow::Result<()> {
    let chat = Backend::chat().await?;
    let mut users = Vec::new();
    for i in 0..6 {
        let mut c = WsClient::connect(&chat.url, &[]).await?;
        c.send_text(&format!(r#"{{"type":"Connect","username":"u{i}"}}"#))
            .await?;
        users.push(c);
    }
    // Everyone in room 1 saw each join; the sixth user is alone in room 2.
    let mut last = Value::Null;
    for _ in 0..5 {
        last = users[0].recv_json().await?;
    }
    assert_eq!(last["room"], 1);
    assert_eq!(last["userCount"], 5);
    let sixth = users[5].recv_json().await?;
    assert_eq!(sixth["room"], 2);
    assert_eq!(sixth["userCount"], 1);
    assert_eq!(sixth["totalUsers"], 6);
    // Data goes to the room only; data before Connect is refused with a reason.
    users[5]
        .send_text(r#"{"type":"Data","message":"anyone?"}"#)
        .await?;
    assert_eq!(users[5].recv_text().await?, "Message sent");
    let mut stranger = WsClient::connect(&chat.url, &[]).await?;
    stranger
        .send_text(r#"{"type":"Data","message":"hi"}"#)
        .await?;
    assert_eq!(stranger.recv_json().await?["type"], "Error");
    for _ in 0..4 {
        users[1].recv_json().await?; // the joins of u1 to u4
    }
    users[1]
        .send_text(r#"{"type":"Data","message":"room one"}"#)
        .await?;
    assert_eq!(users[1].recv_text().await?, "Message sent");
    assert_eq!(users[0].recv_json().await?["message"], "room one");
    Ok(())
}

#[tokio::test]
async fn two_platforms_cannot_share_a_data_folder() -> anyhow::Result<()> {
    let gw = TestPlatform::start().await?;
    let mut config = asyncgate::config::ServeConfig::ephemeral(gw.data_dir().to_path_buf());
    config.drain = std::time::Duration::from_secs(1);
    let err = asyncgate::platform::Platform::start(config)
        .await
        .err()
        .expect("second start refused");
    assert!(err.to_string().contains("another asyncgate"), "{err}");
    gw.shutdown().await;
    Ok(())
}
