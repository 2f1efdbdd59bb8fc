//! Replays, their segments and labels.

use super::*;

pub async fn replays_record_segments_once_and_finish_once(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let t0 = Utc::now();
    let r = store.create_replay(new_replay(ch.id, "Night market", t0)).await.unwrap();
    assert_eq!((r.status, r.segments, r.duration_ms, r.hidden), (ReplayStatus::Recording, 0, 0, false));
    assert_eq!(store.replay(r.id).await.unwrap(), r);

    store.add_replay_bytes(r.id, 700, t0).await.unwrap();
    store.add_replay_segment(r.id, segment(10, 2000), t0).await.unwrap();
    store.add_replay_segment(r.id, segment(12, 2100), t0 + Duration::seconds(4)).await.unwrap();
    // A retried write of the same segment counts once.
    store.add_replay_segment(r.id, segment(10, 2000), t0 + Duration::seconds(5)).await.unwrap();
    let mut after_reconnect = segment(14, 1500);
    after_reconnect.init_version = 2;
    after_reconnect.discontinuity = true;
    store.add_replay_segment(r.id, after_reconnect.clone(), t0 + Duration::seconds(6)).await.unwrap();

    // A rung's segments share the source's numbers and add only their bytes to the totals.
    let rung = |msn| ReplaySegment { rendition: Some("480p".into()), bytes: 500, ..segment(msn, 2000) };
    store.add_replay_segment(r.id, rung(12), t0 + Duration::seconds(6)).await.unwrap();
    store.add_replay_segment(r.id, rung(10), t0 + Duration::seconds(6)).await.unwrap();
    store.add_replay_segment(r.id, rung(10), t0 + Duration::seconds(6)).await.unwrap();

    let segments = store.replay_segments(r.id).await.unwrap();
    assert_eq!(segments, vec![segment(10, 2000), segment(12, 2100), after_reconnect, rung(10), rung(12)]);
    let r2 = store.replay(r.id).await.unwrap();
    assert_eq!((r2.segments, r2.duration_ms, r2.bytes), (3, 5600, 700 + 1010 + 1012 + 1014 + 2 * 500));
    assert_eq!(r2.heartbeat_at.timestamp(), (t0 + Duration::seconds(6)).timestamp());

    store.set_replay_thumbnail(r.id, "thumbnails/1/4.jpg").await.unwrap();
    store.set_replay_thumbnail(r.id, "thumbnails/1/5.jpg").await.unwrap();
    assert_eq!(store.replay(r.id).await.unwrap().thumbnails, 2, "each thumbnail is counted");
    let products = [ProductId(3), ProductId(1)];
    assert!(store.finish_replay(r.id, t0 + Duration::seconds(7), &products).await.unwrap());
    assert!(!store.finish_replay(r.id, t0 + Duration::seconds(99), &[]).await.unwrap(), "second finish is a no-op");
    let done = store.replay(r.id).await.unwrap();
    assert_eq!(done.status, ReplayStatus::Ready);
    assert_eq!(done.products, products.to_vec());
    assert_eq!(done.thumbnail_key.as_deref(), Some("thumbnails/1/5.jpg"));
    assert_eq!(done.ended_at.map(|t| t.timestamp()), Some((t0 + Duration::seconds(7)).timestamp()));

    let missing = ReplayId(987_654);
    assert!(matches!(store.add_replay_segment(missing, segment(1, 1), t0).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.add_replay_bytes(missing, 1, t0).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.finish_replay(missing, t0, &[]).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_replay_thumbnail(missing, "x").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.create_replay(new_replay(ChannelId(987_654), "x", t0)).await, Err(StoreError::NotFound(_))));
}

pub async fn replays_are_listed_hidden_and_deleted(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let t0 = Utc::now() - Duration::hours(3);
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = store.create_replay(new_replay(ch.id, &format!("show {i}"), t0 + Duration::hours(i))).await.unwrap();
        ids.push(r.id);
    }
    store.finish_replay(ids[0], t0, &[]).await.unwrap();
    store.finish_replay(ids[1], t0, &[]).await.unwrap();
    let ready = |include_hidden| ReplayQuery {
        channel: None,
        status: Some(ReplayStatus::Ready),
        include_hidden,
        page: Page::new(50, 0),
    };
    let listed: Vec<_> = store.list_replays(&ready(false)).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![ids[1], ids[0]], "ready ones, newest first");
    let recording = ReplayQuery { status: Some(ReplayStatus::Recording), ..ready(false) };
    assert_eq!(store.list_replays(&recording).await.unwrap().len(), 1);

    assert!(store.set_replay_hidden(ids[1], true).await.unwrap().hidden);
    let listed: Vec<_> = store.list_replays(&ready(false)).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![ids[0]]);
    assert_eq!(store.list_replays(&ready(true)).await.unwrap().len(), 2);
    let by_channel = ReplayQuery { channel: Some(ChannelId(987_654)), ..ready(true) };
    assert!(store.list_replays(&by_channel).await.unwrap().is_empty());
    let paged = ReplayQuery { page: Page::new(1, 1), ..ready(true) };
    assert_eq!(store.list_replays(&paged).await.unwrap()[0].id, ids[0]);

    store.add_replay_segment(ids[0], segment(1, 2000), t0).await.unwrap();
    store.delete_replay(ids[0]).await.unwrap();
    assert!(matches!(store.replay(ids[0]).await, Err(StoreError::NotFound(_))));
    assert!(store.replay_segments(ids[0]).await.unwrap().is_empty());
    assert!(matches!(store.delete_replay(ids[0]).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_replay_hidden(ids[0], false).await, Err(StoreError::NotFound(_))));
}

pub async fn picture_labels_are_recorded_once_per_thumbnail(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let t0 = Utc::now();
    let label = |class: u16, name: &str, category: Option<&str>, confidence: f32| olive_core::Label {
        class,
        name: name.into(),
        category: category.map(Into::into),
        confidence,
    };
    let first = store.create_replay(new_replay(ch.id, "Morning", t0 - Duration::hours(2))).await.unwrap();
    let earlier = PictureLabels {
        replay_id: first.id,
        channel_id: ch.id,
        thumbnail_key: "thumbnails/9/1.jpg".into(),
        taken_at: t0 - Duration::hours(2),
        labels: vec![label(631, "lotion", Some("skincare"), 0.7)],
        cpu_ms: 48,
    };
    assert!(store.record_picture_labels(&earlier).await.unwrap());
    store.finish_replay(first.id, t0 - Duration::hours(1), &[]).await.unwrap();
    assert_eq!(store.current_picture_labels(ch.id).await.unwrap(), None, "a finished live shows nothing now");

    let live = store.create_replay(new_replay(ch.id, "Evening", t0)).await.unwrap();
    let lipstick = PictureLabels {
        replay_id: live.id,
        channel_id: ch.id,
        thumbnail_key: "thumbnails/9/2.jpg".into(),
        taken_at: t0,
        labels: vec![label(629, "lipstick", Some("lipstick"), 0.81), label(551, "face powder", Some("makeup"), 0.1)],
        cpu_ms: 51,
    };
    let cat = PictureLabels {
        thumbnail_key: "thumbnails/9/3.jpg".into(),
        taken_at: t0 + Duration::seconds(30),
        labels: vec![label(282, "tiger cat <b>", None, 0.5)],
        ..lipstick.clone()
    };
    assert!(store.record_picture_labels(&lipstick).await.unwrap());
    assert!(store.record_picture_labels(&cat).await.unwrap());
    // A retried job records its thumbnail once.
    assert!(!store.record_picture_labels(&PictureLabels { cpu_ms: 999, ..lipstick.clone() }).await.unwrap());
    let stored = store.picture_labels(live.id).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].labels, lipstick.labels);
    assert_eq!((stored[0].cpu_ms, stored[1].labels[0].name.as_str()), (51, "tiger cat <b>"));
    let now = store.current_picture_labels(ch.id).await.unwrap().expect("the live shows something");
    assert_eq!(now.thumbnail_key, "thumbnails/9/3.jpg");
    assert_eq!(store.picture_labels(first.id).await.unwrap().len(), 1);

    let orphan = PictureLabels { replay_id: ReplayId(987_654), ..lipstick.clone() };
    assert!(matches!(store.record_picture_labels(&orphan).await, Err(StoreError::NotFound(_))));
    // Deleting the replay deletes what its pictures showed.
    store.delete_replay(live.id).await.unwrap();
    assert!(store.picture_labels(live.id).await.unwrap().is_empty());
}
