//! Webhooks.

use super::*;

pub async fn webhooks_are_stored_listed_and_deleted(store: Arc<dyn Store>) {
    let now = Utc::now();
    let all = store
        .create_webhook(NewWebhook {
            url: "http://127.0.0.1:9/a".into(),
            secret: "s1".into(),
            events: vec![],
            created_at: now,
        })
        .await
        .unwrap();
    let orders = store
        .create_webhook(NewWebhook {
            url: "https://example.com/hook?x=1".into(),
            secret: "s2".into(),
            events: vec!["order.placed".into(), "stream.ended".into()],
            created_at: now,
        })
        .await
        .unwrap();
    assert!(all.wants("stream.started") && all.wants("order.placed"));
    assert!(orders.wants("order.placed") && !orders.wants("stream.started"));
    assert_eq!(store.webhook(orders.id).await.unwrap(), orders);
    assert_eq!(store.list_webhooks().await.unwrap().len(), 2);
    assert!(!format!("{orders:?}").contains("s2"), "secrets stay out of Debug");
    store.delete_webhook(all.id).await.unwrap();
    assert!(matches!(store.delete_webhook(all.id).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.list_webhooks().await.unwrap(), vec![orders]);
}
