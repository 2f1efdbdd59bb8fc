//! One test suite for every engine. Each engine crate's tests call [`store_tests!`] with a function
//! that returns a fresh, migrated, empty store (or `None` with a printed notice when its database is
//! not configured), and get one `#[tokio::test]` per case, in a module per capability of the store
//! as here.

use crate::*;
use chrono::{Duration, Utc};
use olive_core::Currency;
use std::sync::Arc;

pub mod accounts;
pub mod catalogue;
pub mod channels;
pub mod events;
pub mod jobs;
pub mod operations;
pub mod orders;
pub mod replays;
pub mod room;
pub mod usage;
pub mod webhooks;

/// Expands to one test per case of the shared suite, in a module per capability. `$make` is an
/// async fn returning `Option<Arc<dyn Store>>`.
#[macro_export]
macro_rules! store_tests {
    ($make:path) => {
        $crate::store_tests!(@modules $make;
            accounts: [users_round_trip, duplicate_email_is_refused, roles_can_change, sessions_expire_and_can_be_deleted];
            catalogue: [products_are_created_filtered_and_paged, product_patch_changes_only_given_fields, product_images_are_listed_in_order, hostile_strings_are_stored_verbatim];
            channels: [channels_and_stream_keys, lineup_replaces_and_checks_products];
            orders: [order_takes_stock_and_replays_by_key, failed_order_changes_nothing, orders_refuse_unavailable_unknown_and_mixed, concurrent_buyers_never_oversell, concurrent_retries_of_one_key_make_one_order, cancel_returns_stock_once, users_see_only_their_orders, stock_is_conserved_under_random_orders_and_cancels, deals_take_stock_and_give_back_the_unsold, deal_orders_are_batched_idempotent_and_never_oversold, concurrent_deal_batches_never_oversell, channel_sales_count_the_channels_orders, an_order_writes_its_outbox_in_its_own_transaction];
            jobs: [jobs_run_once_and_dedupe, failed_jobs_back_off_then_die, expired_leases_are_reclaimed_and_fenced, concurrent_claims_never_share_a_job];
            webhooks: [webhooks_are_stored_listed_and_deleted];
            replays: [replays_record_segments_once_and_finish_once, replays_are_listed_hidden_and_deleted, picture_labels_are_recorded_once_per_thumbnail];
            room: [chat_is_kept_in_order_and_deleted_softly, chat_moderation_is_kept_per_channel, pins_make_a_timeline];
            events: [events_are_appended_and_read_back];
            usage: [usage_adds_up_per_day_channel_and_meter];
            operations: [gauges_count_jobs_and_sold_out_products];
        );
    };
    (@modules $make:path; $($module:ident: [$($case:ident),* $(,)?];)*) => {
        $(
            mod $module {
                use super::*;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $case() {
                        let Some(store) = $make().await else { return };
                        $crate::testsuite::$module::$case(store).await;
                    }
                )*
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
        visitor: "browser-1".to_owned(),
        created_at: Utc::now(),
    }
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
