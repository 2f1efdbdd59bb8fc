//! Orders and deals: stock is never oversold, keys make one order.

use super::*;

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
        visitor: format!("user-{user}"),
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

/// An order's outbox lives and dies with the order: each new ordinary order queues its
/// `order.placed` notice (with the products whose stock it took) and writes its purchase events in
/// its own transaction, once; a deal's order queues one only when a webhook is registered; a
/// cancelled order queues the stock it gave back; a refused order leaves nothing behind.
pub async fn an_order_writes_its_outbox_in_its_own_transaction(store: Arc<dyn Store>) {
    let queued = |store: Arc<dyn Store>, kind: &'static str| async move {
        let jobs = store.list_jobs(None, Page::new(200, 0)).await.unwrap();
        let mut payloads: Vec<serde_json::Value> =
            jobs.into_iter().filter(|j| j.kind == kind).map(|j| serde_json::from_str(&j.payload).unwrap()).collect();
        payloads.sort_by_key(|p| p["order_id"].as_i64());
        payloads
    };
    let purchases = |store: Arc<dyn Store>| async move {
        let events = store.events_after(0, 100).await.unwrap();
        events
            .into_iter()
            .filter(|e| e.kind == EventKind::Purchase)
            .map(|e| (e.visitor, e.user_id, e.target_id, e.value))
            .collect::<Vec<_>>()
    };
    let buyer = store.create_user(new_user("notice@example.com", Role::Viewer)).await.unwrap();
    let (p, q) = (
        store.create_product(new_product("Mist", "toner", 10)).await.unwrap(),
        store.create_product(new_product("Pad", "toner", 10)).await.unwrap(),
    );
    let first = store.place_order(order(buyer.id, "first", &[(p.id, 1), (q.id, 2)])).await.unwrap().into_order();
    // A replay of the same request queues and records nothing more.
    store.place_order(order(buyer.id, "first", &[(p.id, 1), (q.id, 2)])).await.unwrap();
    assert_eq!(
        queued(store.clone(), crate::ORDER_PLACED_JOB).await,
        vec![serde_json::json!({"order_id": first.id, "stock_changed": [p.id, q.id]})]
    );
    assert_eq!(
        purchases(store.clone()).await,
        vec![
            ("browser-1".to_owned(), Some(buyer.id), p.id.0, 1.0),
            ("browser-1".to_owned(), Some(buyer.id), q.id.0, 2.0)
        ]
    );
    // A deal's order without a webhook: its purchase is recorded, nothing queued.
    let ch = channel_for_replays(&store).await;
    let deal = store.start_deal(new_deal(ch.id, p.id, 3)).await.unwrap();
    let outcomes = store.record_deal_orders(deal.id, &[deal_order(buyer.id, "deal-1", 1)]).await.unwrap();
    assert!(matches!(outcomes[0], DealOrderOutcome::Created(_)), "{outcomes:?}");
    assert_eq!(queued(store.clone(), crate::ORDER_PLACED_JOB).await.len(), 1);
    assert_eq!(purchases(store.clone()).await.len(), 3);
    store
        .create_webhook(NewWebhook {
            url: "https://hooks.example.com/x".into(),
            secret: "whsec_x".into(),
            events: vec![],
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let outcomes = store.record_deal_orders(deal.id, &[deal_order(buyer.id, "deal-2", 1)]).await.unwrap();
    let DealOrderOutcome::Created(in_deal) = &outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(
        queued(store.clone(), crate::ORDER_PLACED_JOB).await[1],
        serde_json::json!({"order_id": in_deal.id, "stock_changed": []})
    );
    // A cancelled order announces the stock it gave back, once.
    store.cancel_order(first.id, buyer.id, Utc::now()).await.unwrap();
    assert_eq!(
        queued(store.clone(), crate::STOCK_CHANGED_JOB).await,
        vec![serde_json::json!({"products": [p.id, q.id]})]
    );
    // An order refused (out of stock) leaves nothing: no notice, no purchase.
    let refused = store.place_order(order(buyer.id, "too-many", &[(q.id, 100)])).await;
    assert!(matches!(refused, Err(StoreError::OutOfStock(_))), "{refused:?}");
    assert_eq!(queued(store.clone(), crate::ORDER_PLACED_JOB).await.len(), 2);
    assert_eq!(purchases(store).await.len(), 4);
}
