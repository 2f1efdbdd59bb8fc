//! Keeping the recommender current: a `reco.train` job (one node of many runs it, through the job
//! queue's dedupe) retrains from every event on a schedule and stores the snapshot in object
//! storage; every node loads a newer snapshot when its version changes ([`follow`]), and swaps it
//! in. A daily `events.compact` job folds raw events older than thirty days.

use super::{load, save, stored_version, train, Snapshot};
use crate::Result;
use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use chrono::Utc;
use olive_jobs::{Handler, JobError};
use olive_objects::Objects;
use olive_reco::serve::TrainParams;
use olive_store::{EventStore, Job, Store};
use std::sync::Arc;
use std::time::Duration;

pub const TRAIN_JOB: &str = "reco.train";
pub const COMPACT_JOB: &str = "events.compact";
/// Raw events older than this are folded together (one row per visitor, kind and target).
const KEEP_RAW: chrono::Duration = chrono::Duration::days(30);
/// How often a node looks for a newer snapshot.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Trains and stores a snapshot.
pub struct Train {
    pub store: Arc<dyn Store>,
    pub objects: Objects,
}

#[async_trait]
impl Handler for Train {
    fn kind(&self) -> &'static str {
        TRAIN_JOB
    }

    async fn run(&self, _: &Job) -> Result<(), JobError> {
        train_and_store(self.store.as_ref(), &self.objects).await.map(drop).map_err(|e| JobError::Retry(e.to_string()))
    }
}

/// Folds raw events older than thirty days.
pub struct Compact {
    pub store: Arc<dyn EventStore>,
}

#[async_trait]
impl Handler for Compact {
    fn kind(&self) -> &'static str {
        COMPACT_JOB
    }

    async fn run(&self, _: &Job) -> Result<(), JobError> {
        let folded =
            self.store.compact_events(Utc::now() - KEEP_RAW).await.map_err(|e| JobError::Retry(e.to_string()))?;
        tracing::info!(folded, "old events compacted");
        Ok(())
    }
}

/// Trains on every event now and stores the snapshot where every node looks for it.
pub async fn train_and_store(store: &dyn Store, objects: &Objects) -> Result<Snapshot> {
    let snapshot = train(store, Utc::now(), &TrainParams::default()).await?;
    save(objects, &snapshot).await?;
    Ok(snapshot)
}

/// Loads the stored snapshot into `current` whenever its version changes.
pub async fn follow(objects: Objects, current: Arc<ArcSwapOption<Snapshot>>) {
    let mut seen: Option<String> = None;
    loop {
        match stored_version(&objects).await {
            Ok(Some(version)) if seen.as_ref() != Some(&version) => match load(&objects).await {
                Ok(Some(snapshot)) => {
                    tracing::info!(trained_at = %snapshot.trained_at, events = snapshot.events, "recommender snapshot loaded");
                    current.store(Some(Arc::new(snapshot)));
                    seen = Some(version);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not load the recommender's snapshot"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for a recommender snapshot"),
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}
