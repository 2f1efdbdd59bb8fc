//! Channels and line-ups.

use super::*;

pub async fn channels_and_stream_keys(store: Arc<dyn Store>) {
    let host = store.create_user(new_user("host@example.com", Role::Host)).await.unwrap();
    let now = Utc::now();
    let ch = store
        .create_channel(NewChannel {
            host_id: host.id,
            title: "Glow up".into(),
            description: "Skincare live".into(),
            scheduled_at: Some(now + Duration::days(1)),
            stream_key_hash: StreamKeyHash([7; 32]),
            created_at: now,
        })
        .await
        .unwrap();
    assert_eq!(ch.status, ChannelStatus::Offline);
    assert_eq!(store.channel(ch.id).await.unwrap(), ch);
    assert_eq!(store.list_channels().await.unwrap(), vec![ch.clone()]);
    assert_eq!(store.channel_by_stream_key_hash(&StreamKeyHash([7; 32])).await.unwrap(), Some(ch.clone()));

    store.set_stream_key_hash(ch.id, StreamKeyHash([8; 32])).await.unwrap();
    assert_eq!(store.channel_by_stream_key_hash(&StreamKeyHash([7; 32])).await.unwrap(), None);
    assert_eq!(store.channel_by_stream_key_hash(&StreamKeyHash([8; 32])).await.unwrap().map(|c| c.id), Some(ch.id));
    assert!(matches!(
        store.set_stream_key_hash(ChannelId(55_555), StreamKeyHash([9; 32])).await,
        Err(StoreError::NotFound(_))
    ));

    let updated = store
        .update_channel(
            ch.id,
            ChannelPatch { title: Some("Glow up 2".into()), scheduled_at: Some(None), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "Glow up 2");
    assert_eq!(updated.description, "Skincare live");
    assert_eq!(updated.scheduled_at, None);
    assert_eq!(updated.thumbnail_interval_s, 5, "the default");
    let updated = store
        .update_channel(ch.id, ChannelPatch { thumbnail_interval_s: Some(12), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((updated.thumbnail_interval_s, updated.title.as_str()), (12, "Glow up 2"));
    assert_eq!(updated.kind, ChannelType::Standard, "channels get the ladder unless asked otherwise");
    let updated = store
        .update_channel(ch.id, ChannelPatch { kind: Some(ChannelType::Basic), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((updated.kind, updated.thumbnail_interval_s), (ChannelType::Basic, 12));
    assert_eq!(store.channel(ch.id).await.unwrap().kind, ChannelType::Basic);
}

pub async fn lineup_replaces_and_checks_products(store: Arc<dyn Store>) {
    let host = store.create_user(new_user("h2@example.com", Role::Host)).await.unwrap();
    let ch = store
        .create_channel(NewChannel {
            host_id: host.id,
            title: "Hair".into(),
            description: String::new(),
            scheduled_at: None,
            stream_key_hash: StreamKeyHash([3; 32]),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let a = store.create_product(new_product("A", "hair", 1)).await.unwrap();
    let b = store.create_product(new_product("B", "hair", 1)).await.unwrap();
    assert!(store.lineup(ch.id).await.unwrap().is_empty());
    store.set_lineup(ch.id, &[b.id, a.id]).await.unwrap();
    assert_eq!(store.lineup(ch.id).await.unwrap(), vec![b.id, a.id]);
    store.set_lineup(ch.id, &[a.id]).await.unwrap();
    assert_eq!(store.lineup(ch.id).await.unwrap(), vec![a.id]);
    let bad = store.set_lineup(ch.id, &[a.id, ProductId(31_337)]).await;
    assert!(matches!(bad, Err(StoreError::UnknownProduct(ProductId(31_337)))), "{bad:?}");
    assert_eq!(store.lineup(ch.id).await.unwrap(), vec![a.id], "a refused line-up changes nothing");
    assert!(matches!(store.set_lineup(ChannelId(8_888), &[]).await, Err(StoreError::NotFound(_))));
}
