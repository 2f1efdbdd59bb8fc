//! The `thumbnail.label` job handler: runs the classifier on a stored thumbnail and records what
//! it saw (one picture at a time per node, so labelling never takes more than one core from the
//! video). Loading the model is the application's (a missing model turns labelling off).

use crate::thumbnail::{thread_cpu_time, LabelRequest, LABEL_JOB};
use async_trait::async_trait;
use chrono::Utc;
use olive_bus::{topics, Bus};
use olive_jobs::{Handler, JobError};
use olive_objects::{ObjectError, Objects};
use olive_store::usage::UsageMeter;
use olive_store::{Job, Meter, PictureLabels, Store, StoreError};
use olive_vision::{preprocess, Classifier};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Runs the classifier on queued thumbnails, one at a time per node: labelling never takes more
/// than one core from the video.
pub struct Label {
    store: Arc<dyn Store>,
    objects: Objects,
    classifier: Arc<Classifier>,
    one_at_a_time: Semaphore,
    /// The channel list shows what is on screen, so a new label is announced to every node's
    /// read cache.
    bus: Arc<dyn Bus>,
    /// Where labelling's CPU time is charged to the channel.
    usage: Arc<UsageMeter>,
}

impl Label {
    pub fn new(store: Arc<dyn Store>, objects: Objects, classifier: Arc<Classifier>, bus: Arc<dyn Bus>) -> Label {
        Label { store, objects, classifier, one_at_a_time: Semaphore::new(1), bus, usage: Arc::default() }
    }

    /// Charges labelling's CPU time to each channel in `usage` (the media's meter).
    pub fn metered(self, usage: Arc<UsageMeter>) -> Label {
        Label { usage, ..self }
    }
}

#[async_trait]
impl Handler for Label {
    fn kind(&self) -> &'static str {
        LABEL_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let request: LabelRequest =
            serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let jpeg = match self.objects.get(&request.thumbnail_key).await {
            Ok(object) => object.bytes,
            // The replay (and its thumbnails) was deleted since: nothing to label.
            Err(ObjectError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        let _turn = self.one_at_a_time.acquire().await.map_err(|e| JobError::Retry(e.to_string()))?;
        let classifier = self.classifier.clone();
        let (labels, cpu) = tokio::task::spawn_blocking(move || {
            let start = thread_cpu_time();
            let labels = preprocess::from_bytes(&jpeg).and_then(|input| classifier.label(&input));
            (labels, thread_cpu_time().saturating_sub(start))
        })
        .await
        .map_err(|e| JobError::Retry(format!("labelling stopped: {e}")))?;
        let labels = labels.map_err(|e| JobError::Permanent(e.to_string()))?;
        metrics::histogram!("olive_label_cpu_seconds").record(cpu.as_secs_f64());
        let record = PictureLabels {
            replay_id: request.replay_id,
            channel_id: request.channel_id,
            thumbnail_key: request.thumbnail_key,
            taken_at: request.taken_at,
            labels,
            cpu_ms: cpu.as_millis().try_into().unwrap_or(i64::MAX),
        };
        match self.store.record_picture_labels(&record).await {
            Ok(true) => {
                metrics::counter!("olive_thumbnails_total", "result" => "labelled").increment(1);
                self.usage.add(Utc::now().date_naive(), Some(record.channel_id), Meter::CpuMs, record.cpu_ms);
                let top = record.labels.first().map_or("nothing", |l| l.name.as_str());
                tracing::info!(channel_id = %record.channel_id, replay_id = %record.replay_id, top, cpu_ms = record.cpu_ms, "thumbnail labelled");
                let announced =
                    self.bus.publish(topics::CACHE_INVALIDATE, topics::CacheNotice::Channels.to_bytes()).await;
                if let Err(e) = announced {
                    tracing::warn!(error = %e, "could not announce a new label; channel lists show it later");
                }
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}
