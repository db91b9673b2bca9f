//! The store under the management API, on SQLite or (with ASYNCGATE_TEST_STORE=postgres)
//! PostgreSQL: concurrent edits of one API are serialized, the second one refused.

use asyncgate_testkit::{Backend, TestPlatform};
use serde_json::json;

#[tokio::test]
async fn of_two_edits_read_at_once_the_second_is_refused_and_the_first_kept() -> anyhow::Result<()>
{
    let chat = Backend::chat().await?;
    let p = TestPlatform::start().await?;
    p.import_sample(&chat.url).await?;
    let store = p.platform.store();
    // Two writers read the same API (as two control planes would).
    let mut first = store.apis(None).await?.remove(0);
    let mut second = first.clone();
    first.design.description = Some("first".into());
    second.design.description = Some("second".into());
    store.update_api(&mut first).await?;
    let refused = store.update_api(&mut second).await.unwrap_err();
    assert!(
        matches!(&refused, asyncgate_store::StoreError::Conflict(m) if m.contains("changed by another request")),
        "{refused}"
    );
    let stored = store.apis(None).await?.remove(0);
    assert_eq!(stored.design.description.as_deref(), Some("first"));
    assert_eq!(stored.row_version, first.row_version);
    // Read again, the second edit goes through.
    let mut again = stored.clone();
    again.design.description = Some("second".into());
    store.update_api(&mut again).await?;

    // Through the management API: a lifecycle change between the read and the write of
    // an edit counts as a write too.
    p.deploy("chat-api", "development", "external").await?;
    let mut stale = store.apis(None).await?.remove(0);
    p.client
        .post("/apis/chat-api/lifecycle", &json!({"action": "publish"}))
        .await?;
    stale.design.description = Some("stale".into());
    assert!(store.update_api(&mut stale).await.is_err());
    let api = p.client.get("/apis/chat-api").await?;
    assert_eq!(api["description"], "second");
    Ok(())
}
