//! One test suite for every engine. Each engine crate's tests call [`store_tests!`] with a function
//! that returns a fresh, migrated, empty store (or `None` with a printed notice when its database is
//! not configured), and get one `#[tokio::test]` per case below.

use crate::*;
use chrono::{Duration, Utc};
use olive_core::Currency;
use std::sync::Arc;

/// Expands to one test per case of the shared suite. `$make` is an async fn returning
/// `Option<Arc<dyn Store>>`.
#[macro_export]
macro_rules! store_tests {
    ($make:path) => {
        $crate::store_tests!(@cases $make;
            users_round_trip,
            duplicate_email_is_refused,
            roles_can_change,
            sessions_expire_and_can_be_deleted,
            products_are_created_filtered_and_paged,
            product_patch_changes_only_given_fields,
            product_images_are_listed_in_order,
            hostile_strings_are_stored_verbatim,
            channels_and_stream_keys,
            lineup_replaces_and_checks_products,
            order_takes_stock_and_replays_by_key,
            failed_order_changes_nothing,
            orders_refuse_unavailable_unknown_and_mixed,
            concurrent_buyers_never_oversell,
            concurrent_retries_of_one_key_make_one_order,
            cancel_returns_stock_once,
            users_see_only_their_orders,
            stock_is_conserved_under_random_orders_and_cancels,
            jobs_run_once_and_dedupe,
            failed_jobs_back_off_then_die,
            expired_leases_are_reclaimed_and_fenced,
            concurrent_claims_never_share_a_job,
            webhooks_are_stored_listed_and_deleted,
            replays_record_segments_once_and_finish_once,
            replays_are_listed_hidden_and_deleted,
            chat_is_kept_in_order_and_deleted_softly,
            chat_moderation_is_kept_per_channel,
            pins_make_a_timeline,
            deals_take_stock_and_give_back_the_unsold,
            deal_orders_are_batched_idempotent_and_never_oversold,
            an_order_queues_its_notice_in_its_own_transaction,
            concurrent_deal_batches_never_oversell,
            channel_sales_count_the_channels_orders,
            events_are_appended_and_read_back,
            picture_labels_are_recorded_once_per_thumbnail,
            usage_adds_up_per_day_channel_and_meter,
            gauges_count_jobs_and_sold_out_products,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(store) = $make().await else { return };
                $crate::testsuite::$case(store).await;
            }
        )*
    };
}

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.to_owned(),
        display_name: email.split('@').next().unwrap_or(email).to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role,
        created_at: Utc::now(),
    }
}

fn new_product(name: &str, category: &str, stock: i64) -> NewProduct {
    NewProduct {
        name: name.to_owned(),
        brand: "Olive Lab".to_owned(),
        category: category.to_owned(),
        description: format!("{name} for testing"),
        price_minor: 12_000,
        currency: Currency::Krw,
        stock,
        status: ProductStatus::Active,
        created_at: Utc::now(),
    }
}

fn order(user: UserId, key: &str, lines: &[(ProductId, i64)]) -> NewOrder {
    let mut lines: Vec<OrderLine> =
        lines.iter().map(|&(product_id, quantity)| OrderLine { product_id, quantity }).collect();
    lines.sort_by_key(|l| l.product_id);
    NewOrder {
        user_id: user,
        idempotency_key: key.to_owned(),
        request_hash: format!("{lines:?}"),
        lines,
        channel_id: None,
        created_at: Utc::now(),
    }
}

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

pub async fn products_are_created_filtered_and_paged(store: Arc<dyn Store>) {
    for i in 0..5 {
        store.create_product(new_product(&format!("Sun {i}"), "sunscreen", 10)).await.unwrap();
    }
    let lip = store.create_product(new_product("Red", "lipstick", 3)).await.unwrap();
    assert_eq!(store.product(lip.id).await.unwrap(), lip);
    assert_eq!(lip.currency, Currency::Krw);

    let all = store.list_products(&ProductQuery::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    let sun =
        store.list_products(&ProductQuery { category: Some("sunscreen".into()), ..Default::default() }).await.unwrap();
    assert_eq!(sun.len(), 5);
    assert!(sun.iter().all(|p| p.category == "sunscreen"));
    let page = store.list_products(&ProductQuery { page: Page::new(2, 4), ..Default::default() }).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[1].id, lip.id, "listing is ordered by id");
    let none =
        store.list_products(&ProductQuery { status: Some(ProductStatus::Draft), ..Default::default() }).await.unwrap();
    assert!(none.is_empty());
    assert!(matches!(store.product(ProductId(424_242)).await, Err(StoreError::NotFound(_))));
}

pub async fn product_patch_changes_only_given_fields(store: Arc<dyn Store>) {
    let p = store.create_product(new_product("Toner", "skincare", 7)).await.unwrap();
    let later = p.created_at + Duration::seconds(5);
    let patched = store
        .update_product(
            p.id,
            ProductPatch {
                price_minor: Some(9_900),
                stock: Some(0),
                status: Some(ProductStatus::Archived),
                updated_at: Some(later),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Toner");
    assert_eq!(patched.price_minor, 9_900);
    assert_eq!(patched.stock, 0);
    assert_eq!(patched.status, ProductStatus::Archived);
    assert_eq!(patched.updated_at, later);
    assert_eq!(store.product(p.id).await.unwrap(), patched);
    let missing = store.update_product(ProductId(777_777), ProductPatch::default()).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub async fn product_images_are_listed_in_order(store: Arc<dyn Store>) {
    let p = store.create_product(new_product("Mask", "skincare", 1)).await.unwrap();
    for n in 0..3 {
        store
            .add_product_image(
                p.id,
                NewProductImage { object_key: format!("products/{}/{n}.png", p.id), content_type: "image/png".into() },
            )
            .await
            .unwrap();
    }
    let got = store.product(p.id).await.unwrap();
    let keys: Vec<_> = got.images.iter().map(|i| i.object_key.as_str()).collect();
    assert_eq!(
        keys,
        [format!("products/{}/0.png", p.id), format!("products/{}/1.png", p.id), format!("products/{}/2.png", p.id)]
    );
    let listed = store.list_products(&ProductQuery::default()).await.unwrap();
    assert_eq!(listed[0].images, got.images);
    let orphan = store
        .add_product_image(
            ProductId(9_999_999),
            NewProductImage { object_key: "x".into(), content_type: "image/png".into() },
        )
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
}

pub async fn hostile_strings_are_stored_verbatim(store: Arc<dyn Store>) {
    let hostile = [
        "'; DROP TABLE products; --",
        "Robert'); DROP TABLE users;--",
        "\" OR 1=1 --",
        "<script>alert(1)</script>",
        "한국어 선크림 🌞 \\ % _",
    ];
    for name in hostile {
        let p = store.create_product(new_product(name, name, 1)).await.unwrap();
        assert_eq!(store.product(p.id).await.unwrap().name, name);
        let by_category =
            store.list_products(&ProductQuery { category: Some(name.into()), ..Default::default() }).await.unwrap();
        assert_eq!(by_category.len(), 1, "category filter on {name:?}");
    }
    let u = store.create_user(new_user("x'or'1'='1@example.com", Role::Viewer)).await.unwrap();
    assert_eq!(store.credentials_by_email(&u.email).await.unwrap().unwrap().user.id, u.id);
    assert_eq!(store.list_products(&ProductQuery::default()).await.unwrap().len(), hostile.len());
}

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

pub async fn order_takes_stock_and_replays_by_key(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("buyer@example.com", Role::Viewer)).await.unwrap();
    let a = store.create_product(new_product("A", "x", 5)).await.unwrap();
    let b = store.create_product(new_product("B", "x", 5)).await.unwrap();
    let first = store.place_order(order(user.id, "k1", &[(a.id, 2), (b.id, 1)])).await.unwrap();
    let PlacedOrder::Created(o) = first else { panic!("expected a new order, got {first:?}") };
    assert_eq!(o.status, OrderStatus::Placed);
    assert_eq!(o.total_minor, 36_000);
    assert_eq!(o.items.len(), 2);
    assert_eq!(o.items[0].name, "A");
    assert_eq!(store.product(a.id).await.unwrap().stock, 3);
    assert_eq!(store.product(b.id).await.unwrap().stock, 4);

    let again = store.place_order(order(user.id, "k1", &[(a.id, 2), (b.id, 1)])).await.unwrap();
    assert_eq!(again, PlacedOrder::Replayed(o.clone()));
    assert_eq!(store.product(a.id).await.unwrap().stock, 3, "a replay takes no stock");

    let other_body = store.place_order(order(user.id, "k1", &[(a.id, 1)])).await;
    assert!(matches!(other_body, Err(StoreError::IdempotencyMismatch)), "{other_body:?}");
    assert_eq!(store.order(o.id).await.unwrap(), o);
}

pub async fn failed_order_changes_nothing(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("e@example.com", Role::Viewer)).await.unwrap();
    let plenty = store.create_product(new_product("Plenty", "x", 100)).await.unwrap();
    let scarce = store.create_product(new_product("Scarce", "x", 1)).await.unwrap();
    let r = store.place_order(order(user.id, "k", &[(plenty.id, 3), (scarce.id, 2)])).await;
    assert!(matches!(r, Err(StoreError::OutOfStock(id)) if id == scarce.id), "{r:?}");
    assert_eq!(store.product(plenty.id).await.unwrap().stock, 100, "rolled back");
    assert_eq!(store.product(scarce.id).await.unwrap().stock, 1);
    assert!(store.orders_for_user(user.id, Page::default()).await.unwrap().is_empty());
    // The key is free again: a corrected request under it succeeds.
    let ok = store.place_order(order(user.id, "k", &[(scarce.id, 1)])).await.unwrap();
    assert!(matches!(ok, PlacedOrder::Created(_)));
}

pub async fn orders_refuse_unavailable_unknown_and_mixed(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("f@example.com", Role::Viewer)).await.unwrap();
    let draft =
        store.create_product(NewProduct { status: ProductStatus::Draft, ..new_product("D", "x", 5) }).await.unwrap();
    let r = store.place_order(order(user.id, "a", &[(draft.id, 1)])).await;
    assert!(matches!(r, Err(StoreError::ProductUnavailable(id)) if id == draft.id), "{r:?}");
    let r = store.place_order(order(user.id, "b", &[(ProductId(123_456), 1)])).await;
    assert!(matches!(r, Err(StoreError::UnknownProduct(ProductId(123_456)))), "{r:?}");
    let won = store.create_product(new_product("W", "x", 5)).await.unwrap();
    let usd = store.create_product(NewProduct { currency: Currency::Usd, ..new_product("U", "x", 5) }).await.unwrap();
    let r = store.place_order(order(user.id, "c", &[(won.id, 1), (usd.id, 1)])).await;
    assert!(matches!(r, Err(StoreError::MixedCurrency)), "{r:?}");
    assert_eq!(store.product(won.id).await.unwrap().stock, 5);
    assert_eq!(store.product(draft.id).await.unwrap().stock, 5);
}

pub async fn concurrent_buyers_never_oversell(store: Arc<dyn Store>) {
    const BUYERS: usize = 200;
    const STOCK: i64 = 10;
    let hot = store.create_product(new_product("Flash", "x", STOCK)).await.unwrap();
    let mut users = Vec::with_capacity(BUYERS);
    for i in 0..BUYERS {
        users.push(store.create_user(new_user(&format!("b{i}@example.com"), Role::Viewer)).await.unwrap());
    }
    let tasks = users.into_iter().map(|u| {
        let store = store.clone();
        tokio::spawn(async move { store.place_order(order(u.id, "flash", &[(hot.id, 1)])).await })
    });
    let results = futures::future::join_all(tasks).await;
    let mut created = 0;
    for r in results {
        match r.expect("task panicked") {
            Ok(PlacedOrder::Created(_)) => created += 1,
            Err(StoreError::OutOfStock(_)) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(created, STOCK);
    assert_eq!(store.product(hot.id).await.unwrap().stock, 0);
}

pub async fn concurrent_retries_of_one_key_make_one_order(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("g@example.com", Role::Viewer)).await.unwrap();
    let p = store.create_product(new_product("P", "x", 50)).await.unwrap();
    let tasks = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.place_order(order(user.id, "same", &[(p.id, 2)])).await })
    });
    let results = futures::future::join_all(tasks).await;
    let ids: std::collections::HashSet<_> = results.into_iter().map(|r| r.unwrap().unwrap().order().id).collect();
    assert_eq!(ids.len(), 1, "one order for one key");
    assert_eq!(store.product(p.id).await.unwrap().stock, 48);
}

pub async fn cancel_returns_stock_once(store: Arc<dyn Store>) {
    let user = store.create_user(new_user("h@example.com", Role::Viewer)).await.unwrap();
    let other = store.create_user(new_user("i@example.com", Role::Viewer)).await.unwrap();
    let p = store.create_product(new_product("P", "x", 4)).await.unwrap();
    let o = store.place_order(order(user.id, "k", &[(p.id, 3)])).await.unwrap().into_order();
    assert_eq!(store.product(p.id).await.unwrap().stock, 1);
    let stranger = store.cancel_order(o.id, other.id, Utc::now()).await;
    assert!(matches!(stranger, Err(StoreError::NotFound(_))), "{stranger:?}");
    let cancelled = store.cancel_order(o.id, user.id, Utc::now()).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(store.product(p.id).await.unwrap().stock, 4);
    let twice = store.cancel_order(o.id, user.id, Utc::now()).await;
    assert!(matches!(twice, Err(StoreError::NotCancellable(OrderStatus::Cancelled))), "{twice:?}");
    assert_eq!(store.product(p.id).await.unwrap().stock, 4, "stock returned once");
}

pub async fn users_see_only_their_orders(store: Arc<dyn Store>) {
    let a = store.create_user(new_user("a@example.com", Role::Viewer)).await.unwrap();
    let b = store.create_user(new_user("b@example.com", Role::Viewer)).await.unwrap();
    let p = store.create_product(new_product("P", "x", 10)).await.unwrap();
    for k in ["1", "2"] {
        store.place_order(order(a.id, k, &[(p.id, 1)])).await.unwrap();
    }
    // The same key under another user is a different order.
    store.place_order(order(b.id, "1", &[(p.id, 1)])).await.unwrap();
    let mine = store.orders_for_user(a.id, Page::default()).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|o| o.user_id == a.id));
    assert!(mine[0].id > mine[1].id, "newest first");
    assert_eq!(store.orders_for_user(b.id, Page::default()).await.unwrap().len(), 1);
}

/// A property over a random (seeded, so repeatable) mix of concurrent orders and cancellations:
/// for every product, stock left plus units in placed orders equals the stock it started with, and
/// stock never went negative (the column's CHECK would have failed the transaction).
pub async fn stock_is_conserved_under_random_orders_and_cancels(store: Arc<dyn Store>) {
    const PRODUCTS: usize = 4;
    const BUYERS: usize = 8;
    const ROUNDS: usize = 6;
    let mut products = Vec::new();
    for i in 0..PRODUCTS {
        products.push(store.create_product(new_product(&format!("P{i}"), "x", 7 + i as i64 * 3)).await.unwrap());
    }
    let initial: i64 = products.iter().map(|p| p.stock).sum();
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        buyers.push(store.create_user(new_user(&format!("r{i}@example.com"), Role::Viewer)).await.unwrap());
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for (b, buyer) in buyers.iter().enumerate() {
            let store = store.clone();
            let user = buyer.id;
            let roll = next();
            let lines: Vec<(ProductId, i64)> = (0..1 + roll % 3)
                .map(|k| {
                    let r = next();
                    (products[((r >> 8) as usize + k as usize) % PRODUCTS].id, 1 + (r % 3) as i64)
                })
                .collect();
            let cancel_first = roll % 4 == 0;
            tasks.push(tokio::spawn(async move {
                if cancel_first {
                    if let Some(o) = store
                        .orders_for_user(user, Page::default())
                        .await
                        .unwrap()
                        .into_iter()
                        .find(|o| o.status == OrderStatus::Placed)
                    {
                        let _ = store.cancel_order(o.id, user, Utc::now()).await;
                    }
                }
                let mut merged: std::collections::BTreeMap<ProductId, i64> = Default::default();
                for (p, q) in lines {
                    *merged.entry(p).or_default() += q;
                }
                let merged: Vec<_> = merged.into_iter().collect();
                match store.place_order(order(user, &format!("r{round}-b{b}"), &merged)).await {
                    Ok(_) | Err(StoreError::OutOfStock(_)) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let mut left = 0;
    for p in &products {
        let stock = store.product(p.id).await.unwrap().stock;
        assert!(stock >= 0);
        left += stock;
    }
    let mut held = 0;
    for b in &buyers {
        for o in store.orders_for_user(b.id, Page::new(200, 0)).await.unwrap() {
            if o.status == OrderStatus::Placed {
                held += o.items.iter().map(|i| i.quantity).sum::<i64>();
            }
        }
    }
    assert_eq!(left + held, initial, "stock left + units held by placed orders = initial stock");
}

fn job(kind: &str, key: Option<&str>, max_attempts: i64, at: chrono::DateTime<Utc>) -> NewJob {
    NewJob {
        kind: kind.to_owned(),
        payload: format!("{{\"kind\":\"{kind}\"}}"),
        dedupe_key: key.map(str::to_owned),
        max_attempts,
        run_at: at,
        created_at: at,
    }
}

pub async fn jobs_run_once_and_dedupe(store: Arc<dyn Store>) {
    let t0 = Utc::now();
    let first = store.enqueue_job(job("webhook", Some("order-1"), 5, t0)).await.unwrap();
    let again = store.enqueue_job(job("webhook", Some("order-1"), 5, t0)).await.unwrap();
    assert_eq!(first.id, again.id, "one job per dedupe key");
    assert_eq!(first.status, JobStatus::Queued);
    assert!(store.claim_job(t0 - Duration::seconds(1), t0).await.unwrap().is_none(), "not due yet");
    let claimed = store.claim_job(t0, t0 + Duration::seconds(30)).await.unwrap().expect("due");
    assert_eq!((claimed.id, claimed.attempts, claimed.status), (first.id, 1, JobStatus::Running));
    assert_eq!(claimed.payload, "{\"kind\":\"webhook\"}");
    assert!(store.claim_job(t0, t0 + Duration::seconds(30)).await.unwrap().is_none(), "leased");
    assert!(store.complete_job(claimed.id, 1, t0).await.unwrap());
    assert!(store.claim_job(t0 + Duration::hours(1), t0 + Duration::hours(2)).await.unwrap().is_none(), "done is done");
    let done = store.list_jobs(Some(JobStatus::Done), Page::default()).await.unwrap();
    assert_eq!(done.len(), 1);
}

pub async fn failed_jobs_back_off_then_die(store: Arc<dyn Store>) {
    let t0 = Utc::now();
    let j = store.enqueue_job(job("flaky", None, 2, t0)).await.unwrap();
    let c = store.claim_job(t0, t0 + Duration::seconds(30)).await.unwrap().unwrap();
    assert!(store.fail_job(c.id, 1, "receiver said 500", Some(t0 + Duration::seconds(10)), t0).await.unwrap());
    assert!(
        store.claim_job(t0 + Duration::seconds(9), t0 + Duration::seconds(40)).await.unwrap().is_none(),
        "backing off"
    );
    let c2 = store.claim_job(t0 + Duration::seconds(10), t0 + Duration::seconds(40)).await.unwrap().unwrap();
    assert_eq!((c2.id, c2.attempts), (j.id, 2));
    assert_eq!(c2.last_error.as_deref(), Some("receiver said 500"));
    assert!(store.fail_job(c2.id, 2, "still 500", None, t0).await.unwrap());
    let dead = store.list_jobs(Some(JobStatus::Dead), Page::default()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("still 500"));
    assert!(store.claim_job(t0 + Duration::days(1), t0 + Duration::days(2)).await.unwrap().is_none());
}

pub async fn expired_leases_are_reclaimed_and_fenced(store: Arc<dyn Store>) {
    let t0 = Utc::now();
    let j = store.enqueue_job(job("finalise", None, 3, t0)).await.unwrap();
    let first = store.claim_job(t0, t0 + Duration::seconds(30)).await.unwrap().unwrap();
    // The first worker died: after its lease another claims the job again.
    assert!(store.claim_job(t0 + Duration::seconds(29), t0 + Duration::seconds(60)).await.unwrap().is_none());
    let second = store.claim_job(t0 + Duration::seconds(30), t0 + Duration::seconds(60)).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempts), (j.id, 2));
    assert!(!store.complete_job(j.id, first.attempts, t0).await.unwrap(), "a stale attempt cannot finish it");
    assert!(store.complete_job(j.id, second.attempts, t0).await.unwrap());
    // A job whose last allowed attempt lost its lease is dead, not retried forever.
    let k = store.enqueue_job(job("finalise", None, 1, t0)).await.unwrap();
    store.claim_job(t0, t0 + Duration::seconds(5)).await.unwrap().unwrap();
    assert!(store.claim_job(t0 + Duration::seconds(6), t0 + Duration::seconds(10)).await.unwrap().is_none());
    let dead = store.list_jobs(Some(JobStatus::Dead), Page::default()).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), vec![k.id]);
}

pub async fn concurrent_claims_never_share_a_job(store: Arc<dyn Store>) {
    let t0 = Utc::now();
    for i in 0..40 {
        store.enqueue_job(job(&format!("k{i}"), None, 1, t0)).await.unwrap();
    }
    let workers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(j) = store.claim_job(t0, t0 + Duration::minutes(5)).await.unwrap() {
                mine.push(j.id);
            }
            mine
        })
    });
    let claimed: Vec<i64> = futures::future::join_all(workers).await.into_iter().flat_map(|r| r.unwrap()).collect();
    let unique: std::collections::HashSet<_> = claimed.iter().collect();
    assert_eq!(claimed.len(), 40);
    assert_eq!(unique.len(), 40, "no job claimed twice");
}

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

async fn channel_for_replays(store: &Arc<dyn Store>) -> Channel {
    let host = store.create_user(new_user("replay-host@example.com", Role::Host)).await.unwrap();
    store
        .create_channel(NewChannel {
            host_id: host.id,
            title: "Night market".into(),
            description: String::new(),
            scheduled_at: None,
            stream_key_hash: StreamKeyHash([3; 32]),
            created_at: Utc::now(),
        })
        .await
        .unwrap()
}

fn new_replay(channel: ChannelId, title: &str, started_at: chrono::DateTime<Utc>) -> NewReplay {
    NewReplay { channel_id: channel, title: title.into(), node: "node-a".into(), started_at }
}

fn segment(msn: i64, duration_ms: i64) -> ReplaySegment {
    ReplaySegment { rendition: None, msn, init_version: 1, discontinuity: false, duration_ms, bytes: 1000 + msn }
}

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

fn new_deal(channel: ChannelId, product: ProductId, listed: i64) -> NewDeal {
    let now = Utc::now();
    NewDeal {
        channel_id: channel,
        product_id: product,
        price_minor: 9_000,
        listed,
        per_customer: 2,
        starts_at: now,
        ends_at: now + Duration::minutes(5),
        node: "node-a".into(),
    }
}

fn deal_order(user: UserId, key: &str, quantity: i64) -> NewDealOrder {
    NewDealOrder {
        user_id: user,
        idempotency_key: key.to_owned(),
        request_hash: format!("deal x{quantity}"),
        quantity,
        created_at: Utc::now(),
    }
}

pub async fn deals_take_stock_and_give_back_the_unsold(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let p = store.create_product(new_product("Cushion", "foundation", 10)).await.unwrap();
    let other = store.create_product(new_product("Mist", "toner", 1)).await.unwrap();
    assert!(matches!(store.start_deal(new_deal(ch.id, p.id, 11)).await, Err(StoreError::OutOfStock(_))));
    assert!(matches!(
        store.start_deal(new_deal(ch.id, ProductId(987_654), 1)).await,
        Err(StoreError::UnknownProduct(_))
    ));
    let deal = store.start_deal(NewDeal { per_customer: 3, ..new_deal(ch.id, p.id, 8) }).await.unwrap();
    assert_eq!((deal.status, deal.sold, deal.listed, deal.currency), (DealStatus::Running, 0, 8, Currency::Krw));
    assert_eq!(store.product(p.id).await.unwrap().stock, 2, "the deal's units leave the product's stock");
    // One running deal per channel and per product.
    assert!(matches!(store.start_deal(new_deal(ch.id, other.id, 1)).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.product(other.id).await.unwrap().stock, 1, "a refused deal takes nothing");
    assert_eq!(store.running_deal(ch.id).await.unwrap(), Some(deal.clone()));
    assert_eq!(store.running_deals(Some("node-a")).await.unwrap(), vec![deal.clone()]);
    assert_eq!(store.running_deals(Some("node-b")).await.unwrap(), vec![], "each node resumes its own");
    assert_eq!(store.running_deals(None).await.unwrap(), vec![deal.clone()]);

    let buyer = store.create_user(new_user("deal-buyer@example.com", Role::Viewer)).await.unwrap();
    store.record_deal_orders(deal.id, &[deal_order(buyer.id, "k1", 3)]).await.unwrap();
    let ended = store.end_deal(deal.id, Utc::now()).await.unwrap();
    assert_eq!((ended.status, ended.sold), (DealStatus::Ended, 3));
    assert!(ended.ended_at.is_some());
    assert_eq!(store.product(p.id).await.unwrap().stock, 7, "the 5 unsold units come back");
    // Ending twice gives nothing back twice; an ended deal sells nothing.
    assert_eq!(store.end_deal(deal.id, Utc::now()).await.unwrap(), ended);
    assert_eq!(store.product(p.id).await.unwrap().stock, 7);
    assert!(matches!(
        store.record_deal_orders(deal.id, &[deal_order(buyer.id, "k2", 1)]).await,
        Err(StoreError::DealNotRunning(_))
    ));
    assert_eq!(store.running_deal(ch.id).await.unwrap(), None);
    // The channel may run another now.
    store.start_deal(new_deal(ch.id, other.id, 1)).await.unwrap();
    assert!(matches!(store.deal(DealId(987_654)).await, Err(StoreError::NotFound(_))));
}

pub async fn deal_orders_are_batched_idempotent_and_never_oversold(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let p = store.create_product(new_product("Serum", "serum", 10)).await.unwrap();
    let deal = store.start_deal(new_deal(ch.id, p.id, 5)).await.unwrap();
    let a = store.create_user(new_user("deal-a@example.com", Role::Viewer)).await.unwrap();
    let b = store.create_user(new_user("deal-b@example.com", Role::Viewer)).await.unwrap();
    // A key `a` used for an ordinary order before: the deal batch names that order, writes nothing.
    let earlier = match store.place_order(order(a.id, "used", &[(p.id, 1)])).await.unwrap() {
        PlacedOrder::Created(o) => o,
        other => panic!("{other:?}"),
    };
    let outcomes = store
        .record_deal_orders(
            deal.id,
            &[deal_order(a.id, "a1", 2), deal_order(b.id, "b1", 1), deal_order(a.id, "used", 1)],
        )
        .await
        .unwrap();
    let DealOrderOutcome::Created(first) = &outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(first.items[0].unit_price_minor, 9_000, "the deal's price, not the product's");
    assert_eq!(first.total_minor, 18_000);
    assert_eq!(store.order(first.id).await.unwrap(), *first, "the returned order is the stored one");
    assert!(matches!(&outcomes[1], DealOrderOutcome::Created(o) if o.user_id == b.id));
    assert!(matches!(&outcomes[2], DealOrderOutcome::Existing { order_id, .. } if *order_id == earlier.id));
    assert_eq!(store.deal(deal.id).await.unwrap().sold, 3);
    let sales = store.deal_sales(deal.id).await.unwrap();
    assert_eq!(sales.iter().map(|s| (s.user_id, s.quantity)).collect::<Vec<_>>(), vec![(a.id, 2), (b.id, 1)]);
    assert_eq!(sales[0].idempotency_key, "a1");

    // The per-customer limit (2) holds in the database: a's third unit is refused, and writes nothing.
    let over = store.record_deal_orders(deal.id, &[deal_order(a.id, "a2", 1)]).await.unwrap();
    assert_eq!(over, vec![DealOrderOutcome::OverLimit { bought: 2 }]);
    assert_eq!(store.deal(deal.id).await.unwrap().sold, 3);
    let retried = store.record_deal_orders(deal.id, &[deal_order(a.id, "a1", 2)]).await.unwrap();
    assert!(matches!(&retried[0], DealOrderOutcome::Existing { order_id, .. } if *order_id == first.id), "{retried:?}");

    // A batch that would sell 6 of 5 is refused whole: nothing of it is written.
    let c = store.create_user(new_user("deal-c@example.com", Role::Viewer)).await.unwrap();
    let d = store.create_user(new_user("deal-d@example.com", Role::Viewer)).await.unwrap();
    let refused = store.record_deal_orders(deal.id, &[deal_order(c.id, "c1", 2), deal_order(d.id, "d1", 1)]).await;
    assert!(matches!(refused, Err(StoreError::OutOfStock(_))), "{refused:?}");
    assert_eq!(store.deal(deal.id).await.unwrap().sold, 3);
    assert_eq!(store.orders_for_user(c.id, Page::default()).await.unwrap().len(), 0);
    store.record_deal_orders(deal.id, &[deal_order(c.id, "c1", 2)]).await.unwrap();
    assert_eq!(store.deal(deal.id).await.unwrap().sold, 5);
}

/// Two writers that both believe they own the deal (a split brain after a failover) cannot sell
/// more than listed between them: the durable count refuses.
pub async fn concurrent_deal_batches_never_oversell(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let p = store.create_product(new_product("Toner pad", "toner", 40)).await.unwrap();
    // Each buyer may take all of it: only the listed count limits this sale.
    let deal = store.start_deal(NewDeal { per_customer: 30, ..new_deal(ch.id, p.id, 30) }).await.unwrap();
    let mut buyers = Vec::new();
    for i in 0..8 {
        buyers.push(store.create_user(new_user(&format!("flash-{i}@example.com"), Role::Viewer)).await.unwrap().id);
    }
    let mut tasks = Vec::new();
    for (i, buyer) in buyers.into_iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut sold = 0;
            for round in 0..6 {
                let batch =
                    [deal_order(buyer, &format!("{i}-{round}-a"), 1), deal_order(buyer, &format!("{i}-{round}-b"), 1)];
                if let Ok(outcomes) = store.record_deal_orders(deal.id, &batch).await {
                    sold += outcomes.iter().filter(|o| matches!(o, DealOrderOutcome::Created(_))).count();
                }
            }
            sold
        }));
    }
    let mut sold = 0;
    for t in tasks {
        sold += t.await.unwrap();
    }
    assert_eq!(sold, 30, "96 units were asked for; exactly the 30 listed were sold");
    assert_eq!(store.deal(deal.id).await.unwrap().sold, 30);
    assert_eq!(store.deal_sales(deal.id).await.unwrap().iter().map(|s| s.quantity).sum::<i64>(), 30);
    let ended = store.end_deal(deal.id, Utc::now()).await.unwrap();
    assert_eq!(ended.sold, 30);
    assert_eq!(store.product(p.id).await.unwrap().stock, 10);
}

/// A channel's sales: its watch page's orders and its deals' orders since a moment, cancelled ones
/// and other channels' left out.
pub async fn channel_sales_count_the_channels_orders(store: Arc<dyn Store>) {
    let ch = channel_for_replays(&store).await;
    let other = store
        .create_channel(NewChannel {
            host_id: ch.host_id,
            title: "Other show".into(),
            description: String::new(),
            scheduled_at: None,
            stream_key_hash: StreamKeyHash([7; 32]),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let p = store.create_product(new_product("Balm", "lip", 50)).await.unwrap();
    let buyer = store.create_user(new_user("sales@example.com", Role::Viewer)).await.unwrap();
    let start = Utc::now();
    assert_eq!(store.channel_sales(ch.id, start).await.unwrap(), ChannelSales::default());

    let from = |key: &str, channel: Option<ChannelId>, quantity: i64| NewOrder {
        channel_id: channel,
        ..order(buyer.id, key, &[(p.id, quantity)])
    };
    store.place_order(from("watch-1", Some(ch.id), 2)).await.unwrap();
    let cancelled = store.place_order(from("watch-2", Some(ch.id), 1)).await.unwrap().into_order();
    store.cancel_order(cancelled.id, buyer.id, Utc::now()).await.unwrap();
    store.place_order(from("elsewhere", Some(other.id), 1)).await.unwrap();
    store.place_order(from("catalogue", None, 1)).await.unwrap();
    let deal = store.start_deal(new_deal(ch.id, p.id, 5)).await.unwrap();
    store.record_deal_orders(deal.id, &[deal_order(buyer.id, "deal-1", 1)]).await.unwrap();

    let sales = store.channel_sales(ch.id, start).await.unwrap();
    assert_eq!(sales.orders, 2, "the watch order and the deal order");
    assert_eq!(sales.revenue, vec![(Currency::Krw, 2 * 12_000 + 9_000)]);
    let later = store.channel_sales(ch.id, Utc::now() + Duration::seconds(1)).await.unwrap();
    assert_eq!(later, ChannelSales::default(), "nothing since a later moment");
    assert_eq!(store.channel_sales(other.id, start).await.unwrap().orders, 1);
}

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

pub async fn usage_adds_up_per_day_channel_and_meter(store: Arc<dyn Store>) {
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let ch = Some(ChannelId(42));
    let row =
        |d: u32, channel: Option<ChannelId>, meter: Meter, amount: i64| Usage { day: day(d), channel, meter, amount };
    store.add_usage(&[]).await.unwrap();
    store
        .add_usage(&[
            row(1, ch, Meter::EgressBytes, 1_000),
            row(1, None, Meter::EgressBytes, 7),
            row(1, ch, Meter::StoredBytes, 5_000),
            row(2, ch, Meter::CpuMs, 30),
        ])
        .await
        .unwrap();
    // A second flush adds to the first; a deletion takes stored bytes back.
    store
        .add_usage(&[
            row(1, ch, Meter::EgressBytes, 500),
            row(2, ch, Meter::StoredBytes, -2_000),
            row(3, ch, Meter::CpuMs, 1),
        ])
        .await
        .unwrap();
    let got = store.usage(day(1), day(3)).await.unwrap();
    assert_eq!(
        got,
        vec![
            row(1, None, Meter::EgressBytes, 7),
            row(1, ch, Meter::EgressBytes, 1_500),
            row(1, ch, Meter::StoredBytes, 5_000),
            row(2, ch, Meter::CpuMs, 30),
            row(2, ch, Meter::StoredBytes, -2_000),
        ]
    );
    assert!(store.usage(day(4), day(30)).await.unwrap().is_empty());
    assert_eq!(store.usage_before(day(1), Meter::StoredBytes).await.unwrap(), vec![]);
    assert_eq!(store.usage_before(day(3), Meter::StoredBytes).await.unwrap(), vec![(ch, 3_000)]);
    assert_eq!(store.usage_before(day(2), Meter::EgressBytes).await.unwrap(), vec![(None, 7), (ch, 1_500)]);
}

pub async fn gauges_count_jobs_and_sold_out_products(store: Arc<dyn Store>) {
    let empty = store.gauges().await.unwrap();
    assert!(empty.jobs.is_empty());
    assert_eq!(empty.products_sold_out, 0);
    assert!(empty.pool_connections >= 1 && empty.pool_idle <= empty.pool_connections);
    let gone = store.create_product(new_product("Gone", "lipstick", 0)).await.unwrap();
    store.create_product(new_product("Plenty", "lipstick", 9)).await.unwrap();
    let mut draft = new_product("Draft", "lipstick", 0);
    draft.status = ProductStatus::Draft;
    store.create_product(draft).await.unwrap();
    let now = Utc::now();
    for key in ["a", "b"] {
        store
            .enqueue_job(NewJob {
                kind: "test".into(),
                payload: "{}".into(),
                dedupe_key: Some(key.into()),
                run_at: now,
                max_attempts: 3,
                created_at: now,
            })
            .await
            .unwrap();
    }
    store.claim_job(now, now + Duration::seconds(60)).await.unwrap().expect("a job is due");
    let gauges = store.gauges().await.unwrap();
    assert_eq!(gauges.products_sold_out, 1, "only {} is on sale and sold out", gone.name);
    assert_eq!(gauges.jobs, vec![(JobStatus::Queued, 1), (JobStatus::Running, 1)]);
}

/// With a webhook registered, each new order (ordinary or a deal's) queues its `order.placed`
/// notice in the order's own transaction, once; with none registered, nothing is queued.
pub async fn an_order_queues_its_notice_in_its_own_transaction(store: Arc<dyn Store>) {
    let notices = |store: Arc<dyn Store>| async move {
        let jobs = store.list_jobs(None, Page::new(200, 0)).await.unwrap();
        let mut payloads: Vec<String> =
            jobs.into_iter().filter(|j| j.kind == crate::ORDER_PLACED_JOB).map(|j| j.payload).collect();
        payloads.sort();
        payloads
    };
    let buyer = store.create_user(new_user("notice@example.com", Role::Viewer)).await.unwrap();
    let p = store.create_product(new_product("Mist", "toner", 10)).await.unwrap();
    let quiet = match store.place_order(order(buyer.id, "quiet", &[(p.id, 1)])).await.unwrap() {
        PlacedOrder::Created(o) => o,
        other => panic!("{other:?}"),
    };
    assert!(notices(store.clone()).await.is_empty(), "no webhook, no notice (order {})", quiet.id);
    store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/x".into(),
            secret: "whsec_x".into(),
            events: vec![],
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let heard = match store.place_order(order(buyer.id, "heard", &[(p.id, 1)])).await.unwrap() {
        PlacedOrder::Created(o) => o,
        other => panic!("{other:?}"),
    };
    // A replay of the same request queues nothing more.
    store.place_order(order(buyer.id, "heard", &[(p.id, 1)])).await.unwrap();
    let ch = channel_for_replays(&store).await;
    let deal = store.start_deal(new_deal(ch.id, p.id, 3)).await.unwrap();
    let outcomes = store.record_deal_orders(deal.id, &[deal_order(buyer.id, "deal", 1)]).await.unwrap();
    let DealOrderOutcome::Created(in_deal) = &outcomes[0] else { panic!("{outcomes:?}") };
    let mut expected = vec![format!("{{\"order_id\":{}}}", heard.id), format!("{{\"order_id\":{}}}", in_deal.id)];
    expected.sort();
    assert_eq!(notices(store.clone()).await, expected);
    // An order refused (out of stock) queues nothing: the notice lives and dies with the order.
    let refused = store.place_order(order(buyer.id, "too-many", &[(p.id, 100)])).await;
    assert!(matches!(refused, Err(StoreError::OutOfStock(_))), "{refused:?}");
    assert_eq!(notices(store).await.len(), 2);
}
