//! What an operator reads of the store as a whole.

use super::*;

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
