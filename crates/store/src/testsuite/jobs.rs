//! The job queue: each job runs once, retried, fenced.

use super::*;

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
