//! Chat, moderation and pins.

use super::*;

pub async fn chat_is_kept_in_order_and_deleted_softly(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let viewer = store.create_user(new_user("chatter@example.com", Role::Viewer)).await.unwrap();
    let t0 = Utc::now() - Duration::minutes(10);
    let mut sent = Vec::new();
    for i in 0..60 {
        let text = if i == 7 { "<b>안녕</b> 'quoted' \"double\"".to_owned() } else { format!("message {i}") };
        let new = NewChatMessage {
            channel_id: ch.id,
            user_id: viewer.id,
            author: "민지".into(),
            text,
            created_at: t0 + Duration::seconds(i),
        };
        sent.push(store.add_chat_message(new).await.unwrap());
    }
    assert!(sent.windows(2).all(|w| w[0].id < w[1].id), "ids increase in the order messages were accepted");
    assert_eq!(sent[7].text, "<b>안녕</b> 'quoted' \"double\"");

    let recent = store.recent_chat(ch.id, 50).await.unwrap();
    assert_eq!(recent.len(), 50);
    assert_eq!(recent.first().map(|m| m.id), Some(sent[10].id), "the last 50, oldest first");
    assert_eq!(recent.last(), sent.last());

    assert!(store.delete_chat_message(ch.id, sent[59].id, Utc::now()).await.unwrap());
    assert!(!store.delete_chat_message(ch.id, sent[59].id, Utc::now()).await.unwrap(), "already deleted");
    assert!(matches!(
        store.delete_chat_message(ChannelId(987_654), sent[1].id, Utc::now()).await,
        Err(StoreError::NotFound(_))
    ));
    let recent = store.recent_chat(ch.id, 50).await.unwrap();
    assert_eq!(recent.last().map(|m| m.id), Some(sent[58].id), "deleted messages are left out");
    assert_eq!(recent.first().map(|m| m.id), Some(sent[9].id));

    // A replay's chat: the messages sent while it was live, page by page.
    let from = t0 + Duration::seconds(20);
    let to = t0 + Duration::seconds(30);
    let page = store.chat_between(ch.id, from, to, 0, 4).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["message 20", "message 21", "message 22", "message 23"]
    );
    let rest = store.chat_between(ch.id, from, to, page[3].id, 100).await.unwrap();
    assert_eq!(rest.len(), 6);
    assert_eq!(rest.last().unwrap().text, "message 29");

    let stranger = NewChatMessage {
        channel_id: ChannelId(987_654),
        user_id: viewer.id,
        author: "x".into(),
        text: "x".into(),
        created_at: t0,
    };
    assert!(matches!(store.add_chat_message(stranger).await, Err(StoreError::NotFound(_))));
}

pub async fn chat_moderation_is_kept_per_channel(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    assert_eq!((ch.chat_slow_mode_s, ch.chat_banned_words.clone()), (0, Vec::<String>::new()));
    let words = vec!["스팸".to_owned(), "spam \"quoted\"".to_owned()];
    let patch =
        ChannelPatch { chat_slow_mode_s: Some(10), chat_banned_words: Some(words.clone()), ..Default::default() };
    let updated = store.update_channel(ch.id, patch).await.unwrap();
    assert_eq!((updated.chat_slow_mode_s, updated.chat_banned_words.clone()), (10, words.clone()));
    let untouched =
        store.update_channel(ch.id, ChannelPatch { title: Some("t".into()), ..Default::default() }).await.unwrap();
    assert_eq!(untouched.chat_banned_words, words);

    let a = store.create_user(new_user("muted@example.com", Role::Viewer)).await.unwrap();
    let b = store.create_user(new_user("banned@example.com", Role::Viewer)).await.unwrap();
    let now = Utc::now();
    store.restrict_chat(ch.id, a.id, Some(now + Duration::minutes(5)), now).await.unwrap();
    store.restrict_chat(ch.id, b.id, None, now).await.unwrap();
    let listed = store.chat_restrictions(ch.id, now).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().find(|r| r.user_id == b.id).unwrap().until, None);
    // A mute that has ended is not listed; a new restriction replaces the old one.
    assert_eq!(store.chat_restrictions(ch.id, now + Duration::minutes(6)).await.unwrap().len(), 1);
    store.restrict_chat(ch.id, a.id, None, now).await.unwrap();
    assert_eq!(store.chat_restrictions(ch.id, now + Duration::minutes(6)).await.unwrap().len(), 2);
    assert!(store.lift_chat_restriction(ch.id, a.id).await.unwrap());
    assert!(!store.lift_chat_restriction(ch.id, a.id).await.unwrap());
    assert_eq!(
        store.chat_restrictions(ch.id, now).await.unwrap(),
        vec![ChatRestriction { user_id: b.id, until: None }]
    );
    assert!(matches!(store.restrict_chat(ChannelId(987_654), a.id, None, now).await, Err(StoreError::NotFound(_))));
}

pub async fn pins_make_a_timeline(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let a = store.create_product(new_product("Lip tint", "lipstick", 5)).await.unwrap();
    let b = store.create_product(new_product("Sun cream", "sunscreen", 5)).await.unwrap();
    assert_eq!(store.latest_pin(ch.id).await.unwrap(), None);
    let t0 = Utc::now() - Duration::minutes(30);
    let first = store.add_pin(ch.id, a.id, t0 + Duration::seconds(10), t0).await.unwrap();
    let second = store.add_pin(ch.id, b.id, t0 + Duration::seconds(70), t0).await.unwrap();
    store.add_pin(ch.id, a.id, t0 + Duration::seconds(3600), t0).await.unwrap();
    assert_eq!(store.latest_pin(ch.id).await.unwrap().map(|p| p.product_id), Some(a.id));
    let timeline = store.pins_between(ch.id, t0, t0 + Duration::seconds(120)).await.unwrap();
    assert_eq!(timeline, vec![first, second]);
    assert!(matches!(store.add_pin(ch.id, ProductId(987_654), t0, t0).await, Err(StoreError::NotFound(_))));
}
