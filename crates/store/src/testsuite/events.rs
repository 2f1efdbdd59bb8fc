//! The event log.

use super::*;

pub async fn events_are_appended_and_read_back(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("events@example.com", Role::Viewer)).await.unwrap();
    let at = Utc::now();
    let event = |visitor: &str, user_id: Option<UserId>, kind: EventKind, id: i64| NewEvent {
        visitor: visitor.into(),
        user_id,
        kind,
        target: TargetKind::Channel,
        target_id: id,
        value: if kind == EventKind::Watch { 42.5 } else { 1.0 },
        at,
    };
    assert_eq!(store.events_after(0, 10).await.unwrap(), vec![]);
    store.record_events(&[]).await.unwrap();
    store
        .record_events(&[
            event("v-anon", None, EventKind::View, 1),
            event("v-anon", None, EventKind::Watch, 1),
            event("v-signed", Some(user.id), EventKind::Heart, 2),
        ])
        .await
        .unwrap();
    // The same user from another browser.
    store.record_events(&[event("v-phone", Some(user.id), EventKind::Click, 3)]).await.unwrap();

    let all = store.events_after(0, 10).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(
        (all[1].kind, all[1].value, all[1].target, all[1].target_id),
        (EventKind::Watch, 42.5, TargetKind::Channel, 1)
    );
    assert_eq!(store.events_after(all[1].id, 1).await.unwrap(), vec![all[2].clone()], "paged by id");

    let mine = store.recent_events(Some(user.id), "ignored", 10).await.unwrap();
    assert_eq!(mine.iter().map(|e| e.target_id).collect::<Vec<_>>(), vec![3, 2], "newest first, every browser");
    let anon = store.recent_events(None, "v-anon", 1).await.unwrap();
    assert_eq!((anon.len(), anon[0].kind), (1, EventKind::Watch));
    assert_eq!(store.recent_events(None, "nobody", 10).await.unwrap(), vec![]);

    // A batch naming an unknown user is refused whole.
    let refused = store
        .record_events(&[event("v", None, EventKind::View, 9), event("v", Some(UserId(987_654)), EventKind::View, 9)])
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound(_))), "{refused:?}");
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 4);

    // Compaction folds old rows per visitor, account, kind and target; newer rows stay as they are.
    let old = at - Duration::days(40);
    let mut aged = event("v-anon", None, EventKind::Watch, 1);
    aged.at = old;
    store
        .record_events(&[aged.clone(), aged.clone(), NewEvent { at: old + Duration::hours(1), ..aged.clone() }])
        .await
        .unwrap();
    let mut other = event("v-anon", None, EventKind::View, 1);
    other.at = old;
    store.record_events(&[other.clone(), other]).await.unwrap();
    assert_eq!(store.compact_events(at - Duration::days(30)).await.unwrap(), 5);
    let all = store.events_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 4 + 2);
    let folded = |kind| all.iter().find(|e| e.at < at - Duration::days(1) && e.kind == kind).unwrap();
    let watch = folded(EventKind::Watch);
    assert_eq!(watch.value, 3.0 * 42.5);
    assert!((watch.at - (old + Duration::hours(1))).num_milliseconds().abs() < 1, "the latest time is kept");
    let view = folded(EventKind::View);
    assert_eq!(view.value, 2.0);
    assert_eq!(store.compact_events(at - Duration::days(30)).await.unwrap(), 2, "folding folded rows changes nothing");
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 6);
    assert_eq!(store.compact_events(old - Duration::days(1)).await.unwrap(), 0);
}
