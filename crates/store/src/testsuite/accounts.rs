//! Accounts and sessions.

use super::*;

pub async fn users_round_trip(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    let user = store.create_user(new_user("ana@example.com", Role::Viewer)).await.unwrap();
    assert_eq!(user.email, "ana@example.com");
    assert_eq!(user.role, Role::Viewer);
    assert_eq!(store.user(user.id).await.unwrap(), user);
    let creds = store.credentials_by_email("ana@example.com").await.unwrap().unwrap();
    assert_eq!(creds.user, user);
    assert!(creds.password_hash.starts_with("$argon2id$"));
    assert!(store.credentials_by_email("nobody@example.com").await.unwrap().is_none());
    assert!(matches!(store.user(UserId(999_999)).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn duplicate_email_is_refused(store: Arc<dyn Store>) {
    store.create_user(new_user("bo@example.com", Role::Viewer)).await.unwrap();
    let again = store.create_user(new_user("bo@example.com", Role::Host)).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))), "{again:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn roles_can_change(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("cy@example.com", Role::Viewer)).await.unwrap();
    let host = store.set_user_role(user.id, Role::Host).await.unwrap();
    assert_eq!(host.role, Role::Host);
    let listed = store.list_users(Page::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].role, Role::Host);
}

pub async fn sessions_expire_and_can_be_deleted(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("di@example.com", Role::Viewer)).await.unwrap();
    let now = Utc::now();
    let live = SessionHash([1; 32]);
    let stale = SessionHash([2; 32]);
    for (hash, expires_at) in [(&live, now + Duration::hours(1)), (&stale, now - Duration::seconds(1))] {
        store
            .create_session(NewSession {
                hash: hash.clone(),
                user_id: user.id,
                kind: SessionKind::Cookie,
                created_at: now - Duration::hours(2),
                expires_at,
            })
            .await
            .unwrap();
    }
    assert_eq!(store.session_user(&live, now).await.unwrap().map(|u| u.id), Some(user.id));
    assert_eq!(store.session_user(&stale, now).await.unwrap(), None);
    assert_eq!(store.session_user(&SessionHash([3; 32]), now).await.unwrap(), None);
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 1);
    store.delete_session(&live).await.unwrap();
    assert_eq!(store.session_user(&live, now).await.unwrap(), None);

    // Signing out everywhere but here, then everywhere.
    let other = store.create_user(new_user("dj@example.com", Role::Viewer)).await.unwrap();
    for (n, owner) in [(10u8, user.id), (11, user.id), (12, user.id), (13, other.id)] {
        let new = NewSession {
            hash: SessionHash([n; 32]),
            user_id: owner,
            kind: SessionKind::Bearer,
            created_at: now,
            expires_at: now + Duration::hours(1),
        };
        store.create_session(new).await.unwrap();
    }
    assert_eq!(store.delete_user_sessions(user.id, Some(&SessionHash([10; 32]))).await.unwrap(), 2);
    assert!(store.session_user(&SessionHash([10; 32]), now).await.unwrap().is_some(), "the kept one");
    assert!(store.session_user(&SessionHash([11; 32]), now).await.unwrap().is_none());
    assert_eq!(store.delete_user_sessions(user.id, None).await.unwrap(), 1);
    assert!(store.session_user(&SessionHash([13; 32]), now).await.unwrap().is_some(), "another user's");

    store.set_password_hash(user.id, "new-hash").await.unwrap();
    let creds = store.credentials_by_email("di@example.com").await.unwrap().unwrap();
    assert_eq!(creds.password_hash, "new-hash");
    assert!(matches!(store.set_password_hash(UserId(999_999), "x").await, Err(StoreError::NotFound(_))));
}
