//! Background jobs, durable in the database: what the original system did with serverless
//! functions. A job is enqueued with a kind and a JSON payload; workers on any node claim due jobs
//! with a lease, run the handler registered for the kind, and mark the job done, or queue it again
//! with exponential backoff, or — out of attempts — leave it dead for an admin to see. A worker
//! that dies mid-job loses its lease and the job runs again, so delivery is at least once and
//! handlers must be idempotent.
//!
//! [`Worker::step`] takes the current time as an argument and does one claim-and-run, so every
//! path is tested with a made-up clock; [`Worker::run`] is the loop around it.

pub mod order_effects;
pub mod webhooks;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use olive_store::{Job, NewJob, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a handler did not finish its job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (a receiver was down, storage was busy).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad payload): dead at once.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The job kind this handler runs.
    fn kind(&self) -> &'static str;
    async fn run(&self, job: &Job) -> Result<(), JobError>;
}

/// How workers pace themselves.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// How long a claimed job is ours before another worker may take it.
    pub lease: Duration,
    /// Delay before the second attempt; doubled for each further one.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long an idle worker waits before looking again.
    pub idle_poll: Duration,
    /// At shutdown, how long the worker goes on running jobs that are due (a recording that just
    /// ended is finalised before the process exits, rather than at the next start).
    pub drain: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            lease: Duration::from_secs(60),
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(600),
            idle_poll: Duration::from_millis(500),
            drain: Duration::from_secs(10),
        }
    }
}

/// Delay before attempt `attempt + 1`, after `attempt` failed: `first × 2^(attempt−1)`, capped.
pub fn retry_delay(attempt: i64, settings: &WorkerSettings) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(30);
    settings.first_retry.saturating_mul(1 << exponent).min(settings.max_retry)
}

/// Enqueues jobs.
#[derive(Clone)]
pub struct JobQueue {
    store: Arc<dyn Store>,
}

impl JobQueue {
    pub fn new(store: Arc<dyn Store>) -> Self {
        JobQueue { store }
    }

    /// Adds a job due now; with a `dedupe_key`, enqueuing the same key again adds nothing.
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: &impl serde::Serialize,
        dedupe_key: Option<String>,
        max_attempts: i64,
        now: DateTime<Utc>,
    ) -> Result<Job, StoreError> {
        let payload = serde_json::to_string(payload).map_err(|e| StoreError::Backend(format!("job payload: {e}")))?;
        self.store
            .enqueue_job(NewJob {
                kind: kind.to_owned(),
                payload,
                dedupe_key,
                max_attempts,
                run_at: now,
                created_at: now,
            })
            .await
    }
}

/// Asks for job `kind` every `every`, from every node: the dedupe key names the period, so it runs
/// once per period across nodes.
pub async fn every(queue: JobQueue, kind: &'static str, every: Duration) {
    let period = every.as_secs().max(1);
    loop {
        let now = Utc::now();
        let window = now.timestamp().max(0) as u64 / period;
        let key = format!("{kind}/{period}/{window}");
        if let Err(e) = queue.enqueue(kind, &serde_json::json!({}), Some(key), 3, now).await {
            tracing::warn!(error = %e, kind, "could not schedule a periodic job");
        }
        let into_window = now.timestamp().max(0) as u64 % period;
        tokio::time::sleep(Duration::from_secs(period - into_window)).await;
    }
}

/// What one [`Worker::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Idle,
    Done { id: i64, kind: String },
    Retry { id: i64, kind: String, at: DateTime<Utc> },
    Dead { id: i64, kind: String },
}

pub struct Worker {
    store: Arc<dyn Store>,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, settings: WorkerSettings) -> Self {
        Worker { store, handlers: HashMap::new(), settings }
    }

    pub fn register(mut self, handler: Arc<dyn Handler>) -> Self {
        // Every kind's outcomes exist from the start at zero, so dashboards and alerts see them.
        for result in ["done", "retry", "dead"] {
            metrics::counter!("olive_jobs_total", "kind" => handler.kind(), "result" => result).absolute(0);
        }
        self.handlers.insert(handler.kind(), handler);
        self
    }

    fn count(kind: &str, result: &'static str) {
        metrics::counter!("olive_jobs_total", "kind" => kind.to_owned(), "result" => result).increment(1);
    }

    /// Claims one due job (as of `now`), runs it and records the outcome.
    pub async fn step(&self, now: DateTime<Utc>) -> Result<Step, StoreError> {
        let lease_until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(1));
        let Some(job) = self.store.claim_job(now, lease_until).await? else {
            return Ok(Step::Idle);
        };
        let (id, kind) = (job.id, job.kind.clone());
        let outcome = match self.handlers.get(kind.as_str()) {
            Some(handler) => handler.run(&job).await,
            None => Err(JobError::Permanent(format!("no handler for job kind {kind:?}"))),
        };
        match outcome {
            Ok(()) => {
                self.store.complete_job(id, job.attempts, now).await?;
                Self::count(&kind, "done");
                Ok(Step::Done { id, kind })
            }
            Err(e) => {
                let last = job.attempts >= job.max_attempts || matches!(e, JobError::Permanent(_));
                let retry_at = (!last).then(|| {
                    now + chrono::Duration::from_std(retry_delay(job.attempts, &self.settings))
                        .unwrap_or(chrono::Duration::minutes(10))
                });
                self.store.fail_job(id, job.attempts, &e.to_string(), retry_at, now).await?;
                match retry_at {
                    Some(at) => {
                        tracing::warn!(job_id = id, kind, attempt = job.attempts, error = %e, "job failed; will retry");
                        Self::count(&kind, "retry");
                        Ok(Step::Retry { id, kind, at })
                    }
                    None => {
                        tracing::error!(job_id = id, kind, attempt = job.attempts, error = %e, "job failed for good");
                        Self::count(&kind, "dead");
                        Ok(Step::Dead { id, kind })
                    }
                }
            }
        }
    }

    /// Runs jobs until `shutdown` resolves; a job in progress finishes first, then jobs already
    /// due run for up to `drain`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        self.run_until(shutdown).await;
        let deadline = tokio::time::Instant::now() + self.settings.drain;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.step(Utc::now())).await {
                Ok(Ok(Step::Idle)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(_)) => {}
            }
        }
    }

    async fn run_until(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.step(Utc::now()).await {
                Ok(Step::Idle) => self.settings.idle_poll,
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %e, "job queue unavailable");
                    self.settings.idle_poll * 4
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olive_store::JobStatus;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn store() -> Arc<dyn Store> {
        Arc::new(olive_store_sqlite::test_support::temporary().await)
    }

    /// Fails its first `failures` runs, then succeeds; counts runs.
    struct Flaky {
        failures: u32,
        runs: AtomicU32,
    }

    #[async_trait]
    impl Handler for Flaky {
        fn kind(&self) -> &'static str {
            "flaky"
        }
        async fn run(&self, _job: &Job) -> Result<(), JobError> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            if n < self.failures {
                Err(JobError::Retry(format!("failure {}", n + 1)))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = WorkerSettings::default();
        let delays: Vec<u64> = (1..=12).map(|a| retry_delay(a, &s).as_secs()).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]);
        assert_eq!(retry_delay(i64::MAX, &s).as_secs(), 600);
    }

    #[tokio::test]
    async fn a_flaky_handler_is_retried_with_backoff_until_it_succeeds() {
        let store = store().await;
        let handler = Arc::new(Flaky { failures: 2, runs: AtomicU32::new(0) });
        let worker = Worker::new(store.clone(), WorkerSettings::default()).register(handler.clone());
        let t0 = Utc::now();
        let job =
            JobQueue::new(store.clone()).enqueue("flaky", &serde_json::json!({"n": 1}), None, 5, t0).await.unwrap();

        let Step::Retry { at, .. } = worker.step(t0).await.unwrap() else { panic!("expected a retry") };
        assert_eq!(at, t0 + chrono::Duration::seconds(2));
        assert_eq!(worker.step(t0 + chrono::Duration::seconds(1)).await.unwrap(), Step::Idle, "backing off");
        let Step::Retry { at, .. } = worker.step(t0 + chrono::Duration::seconds(2)).await.unwrap() else { panic!() };
        assert_eq!(at, t0 + chrono::Duration::seconds(2 + 4));
        let done = worker.step(t0 + chrono::Duration::seconds(6)).await.unwrap();
        assert_eq!(done, Step::Done { id: job.id, kind: "flaky".into() });
        assert_eq!(handler.runs.load(Ordering::SeqCst), 3);
        assert_eq!(store.list_jobs(Some(JobStatus::Done), Default::default()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn out_of_attempts_or_unknown_kinds_are_dead_letters() {
        let store = store().await;
        let worker = Worker::new(store.clone(), WorkerSettings::default())
            .register(Arc::new(Flaky { failures: 10, runs: AtomicU32::new(0) }));
        let t0 = Utc::now();
        let queue = JobQueue::new(store.clone());
        queue.enqueue("flaky", &(), None, 2, t0).await.unwrap();
        queue.enqueue("mystery", &(), None, 5, t0).await.unwrap();
        let mut dead = 0;
        let mut now = t0;
        for _ in 0..10 {
            match worker.step(now).await.unwrap() {
                Step::Dead { .. } => dead += 1,
                Step::Idle => now += chrono::Duration::seconds(5),
                _ => {}
            }
        }
        assert_eq!(dead, 2);
        let letters = store.list_jobs(Some(JobStatus::Dead), Default::default()).await.unwrap();
        assert!(letters.iter().any(|j| j.kind == "mystery" && j.attempts == 1), "unknown kinds die at once");
        assert!(letters.iter().any(|j| j.kind == "flaky" && j.attempts == 2));
    }

    #[tokio::test]
    async fn a_worker_that_died_mid_job_has_the_job_redone() {
        let store = store().await;
        let t0 = Utc::now();
        JobQueue::new(store.clone()).enqueue("flaky", &(), Some("once".into()), 3, t0).await.unwrap();
        // A worker claims the job and dies without a word: nothing but its lease remains.
        let lost = store.claim_job(t0, t0 + chrono::Duration::seconds(60)).await.unwrap().unwrap();
        let handler = Arc::new(Flaky { failures: 0, runs: AtomicU32::new(0) });
        let worker = Worker::new(store.clone(), WorkerSettings::default()).register(handler.clone());
        assert_eq!(worker.step(t0 + chrono::Duration::seconds(59)).await.unwrap(), Step::Idle);
        let redone = worker.step(t0 + chrono::Duration::seconds(60)).await.unwrap();
        assert_eq!(redone, Step::Done { id: lost.id, kind: "flaky".into() });
        assert_eq!(handler.runs.load(Ordering::SeqCst), 1);
    }
}
