//! Recording: every live is written to object storage while it runs, so a crash loses at most the
//! segment in progress, and becomes a replay when it ends.
//!
//! A recording spans one live window: from the first publish until the stream ends, reconnects
//! included (they continue the window, with a new init segment and a discontinuity). The ingest
//! session hands each init segment and each completed segment to the window's [`Recorder`], a task
//! that writes the object (`recordings/{replay}/init-{v}.mp4`, `…/seg-{msn}.m4s`) and then the
//! segment's row in the database — the row is the recording's index, so it never names an object
//! that was not stored. The live path never waits for storage: if the recorder falls behind by a
//! whole queue of segments, the segment is dropped (counted and logged) and the replay shows a
//! discontinuity there.
//!
//! Ending queues a `recording.finalise` job; so does start-up for recordings this node left
//! unfinished when it crashed, and a periodic sweep for recordings of nodes that went silent. The
//! job writes the complete VOD playlist beside the segments and queues `replay.register`, which
//! marks the replay ready with the channel's line-up and announces `replay.ready`. Both are
//! idempotent: running either twice changes nothing more.

use crate::LiveChannel;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, ReplayId};
use olive_jobs::{Handler, JobError, JobQueue};
use olive_media_mux::master::{self, Multivariant, Variant};
use olive_media_mux::vod::{self, VodSegment};
use olive_media_mux::{MediaFile, RungName};
use olive_objects::Objects;
use olive_store::usage::UsageMeter;
use olive_store::{Channel, Job, Meter, NewReplay, Page, ReplayQuery, ReplaySegment, ReplayStatus, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Job kind: write the final playlist of an ended recording.
pub const FINALISE: &str = "recording.finalise";
/// Job kind: list an ended recording as a replay and announce it.
pub const REGISTER: &str = "replay.register";
/// Segments a recorder may be behind before it drops one (about a minute at 2 s segments).
pub const QUEUE_SEGMENTS: usize = 32;
/// Renditions a recording may hold: the source and a ladder's rungs (its queue holds each's).
const RENDITIONS: usize = 6;
/// Writes to object storage are tried this many times before the segment is given up.
const WRITE_ATTEMPTS: u32 = 3;

/// The object key of a recording's media file (`init-{v}.mp4`, `seg-{msn}.m4s`): the source's
/// beside the playlist, each rung's in a folder of its name (`480p/seg-{msn}.m4s`).
pub fn media_key(replay: ReplayId, rendition: Option<RungName>, file: MediaFile) -> String {
    match rendition {
        None => format!("{}/{file}", prefix(replay)),
        Some(rung) => format!("{}/{rung}/{file}", prefix(replay)),
    }
}

pub fn playlist_key(replay: ReplayId) -> String {
    format!("{}/index.m3u8", prefix(replay))
}

pub use olive_commerce::replays::object_prefix as prefix;

/// The segments of one rendition (`None`: the source) among a recording's.
fn of_rendition(segments: &[ReplaySegment], rendition: Option<RungName>) -> Vec<VodSegment> {
    let name = rendition.map(|r| r.to_string());
    segments
        .iter()
        .filter(|s| s.rendition == name)
        .map(|s| VodSegment {
            msn: s.msn.max(0) as u64,
            init_version: s.init_version.max(0) as u32,
            discontinuity: s.discontinuity,
            duration_ms: s.duration_ms,
        })
        .collect()
}

/// The rungs a recording has segments of.
pub fn recorded_rungs(segments: &[ReplaySegment]) -> Vec<RungName> {
    let mut rungs: Vec<RungName> =
        segments.iter().filter_map(|s| s.rendition.as_deref().and_then(RungName::parse)).collect();
    rungs.sort_unstable_by(|a, b| b.cmp(a));
    rungs.dedup();
    rungs
}

/// A rendition's playlist of a recording: complete (`VOD`) once it is ready, growing (`EVENT`)
/// before. A rung's follows the source's line for line (`vod::render_rung`); `None` if the
/// recording has no segment of that rung.
pub fn playlist(segments: &[ReplaySegment], rendition: Option<RungName>, complete: bool) -> Option<String> {
    let source = of_rendition(segments, None);
    match rendition {
        None => Some(vod::render(&source, complete)),
        Some(_) => {
            let rung = of_rendition(segments, rendition);
            (!rung.is_empty()).then(|| vod::render_rung(&source, &rung, complete))
        }
    }
}

/// A recording's multivariant playlist: the source and every recorded rung, each described by
/// its latest init segment (read back from storage) and its stored bytes over its duration.
/// `None` before the source has a segment.
pub async fn multivariant(objects: &Objects, replay: ReplayId, segments: &[ReplaySegment]) -> Option<String> {
    let renditions = std::iter::once(None).chain(recorded_rungs(segments).into_iter().map(Some));
    let mut variants = Vec::new();
    let mut audio_channels = None;
    for rendition in renditions {
        let name = rendition.map(|r| r.to_string());
        let rows: Vec<&ReplaySegment> = segments.iter().filter(|s| s.rendition == name).collect();
        let Some(last) = rows.last() else { continue };
        let key = media_key(replay, rendition, MediaFile::Init(last.init_version.max(0) as u32));
        let Ok(init) = objects.get(&key).await else { continue };
        let Some((Some(video), audio)) = olive_media_mux::boxes::read_init(&init.bytes) else { continue };
        if rendition.is_none() {
            audio_channels = audio.as_ref().map(|a| a.channels);
        }
        let rate = |bytes: i64, ms: i64| (bytes.max(0) as u64 * 8000) / (ms.max(1) as u64);
        let (bytes, ms) = rows.iter().fold((0, 0), |(b, d), s| (b + s.bytes, d + s.duration_ms));
        let average = rate(bytes, ms);
        let peak = rows.iter().map(|s| rate(s.bytes, s.duration_ms)).max().unwrap_or(average);
        variants.push(Variant {
            uri: match rendition {
                None => "index.m3u8".into(),
                Some(rung) => format!("{rung}/index.m3u8"),
            },
            bandwidth: peak.max(average),
            average_bandwidth: average,
            width: video.width,
            height: video.height,
            frame_rate: video.frame_rate,
            codecs: master::codecs(&video, audio.as_ref()),
        });
    }
    if variants.is_empty() || variants[0].uri != "index.m3u8" {
        return None;
    }
    master::best_first(&mut variants);
    Some(Multivariant { variants: &variants, audio_channels }.render())
}

/// One completed segment on its way to storage.
#[derive(Debug)]
pub struct SegmentWrite {
    /// `None` for the source.
    pub rendition: Option<RungName>,
    pub msn: u64,
    pub init_version: u32,
    pub discontinuity: bool,
    pub duration_ms: i64,
    /// The segment is the concatenation of its parts.
    pub parts: Vec<Bytes>,
}

#[derive(Debug)]
enum Write {
    Init { rendition: Option<RungName>, version: u32, bytes: Bytes },
    Segment(SegmentWrite),
    Finish,
}

/// What ingest holds to feed a recording. Cloning is cheap; sending never waits.
#[derive(Debug, Clone)]
pub struct Recorder {
    replay: ReplayId,
    tx: mpsc::Sender<Write>,
}

impl Recorder {
    pub fn replay(&self) -> ReplayId {
        self.replay
    }

    /// An init segment of the source (`None`) or of a rung.
    pub fn init(&self, rendition: Option<RungName>, version: u32, bytes: Bytes) {
        self.send(Write::Init { rendition, version, bytes });
    }

    pub fn segment(&self, segment: SegmentWrite) {
        self.send(Write::Segment(segment));
    }

    fn send(&self, write: Write) {
        if let Err(e) = self.tx.try_send(write) {
            metrics::counter!("olive_recording_dropped_total").increment(1);
            tracing::warn!(replay_id = %self.replay, "recording is behind; a write was dropped: {e}");
        }
    }
}

/// A recording in progress on this node.
struct Active {
    window: Arc<LiveChannel>,
    recorder: Recorder,
    task: JoinHandle<()>,
}

/// Starts, feeds and ends the recordings of this node, and finalises them.
pub struct Recordings {
    store: Arc<dyn Store>,
    objects: Objects,
    jobs: JobQueue,
    /// This node's name, stored with each recording it makes.
    node: String,
    /// When this process began: this node's recordings begun earlier were left by a crash.
    started_at: DateTime<Utc>,
    active: Mutex<HashMap<ChannelId, Active>>,
    /// Where the bytes each recording stores are counted.
    usage: Arc<UsageMeter>,
}

impl Recordings {
    pub fn new(store: Arc<dyn Store>, objects: Objects, node: String) -> Self {
        let jobs = JobQueue::new(store.clone());
        Recordings {
            store,
            objects,
            jobs,
            node,
            started_at: Utc::now(),
            active: Mutex::new(HashMap::new()),
            usage: Arc::default(),
        }
    }

    /// Counts the bytes recordings store in `usage` (the media's meter).
    pub fn metered(self, usage: Arc<UsageMeter>) -> Self {
        Recordings { usage, ..self }
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The recorder of `window`: the one already running when a broadcaster reconnects to the same
    /// window, else a new recording. `None` (and an error in the log) if the database refused: the
    /// live goes on unrecorded.
    pub async fn recorder(&self, channel: &Channel, window: &Arc<LiveChannel>) -> Option<Recorder> {
        if let Some(active) = self.active.lock().expect("recordings poisoned").get(&channel.id) {
            if Arc::ptr_eq(&active.window, window) {
                return Some(active.recorder.clone());
            }
        }
        let new = NewReplay {
            channel_id: channel.id,
            title: channel.title.clone(),
            node: self.node.clone(),
            started_at: Utc::now(),
        };
        let replay = match self.store.create_replay(new).await {
            Ok(replay) => replay,
            Err(e) => {
                tracing::error!(channel_id = %channel.id, error = %e, "could not start a recording; the live is not recorded");
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE_SEGMENTS * RENDITIONS);
        let recorder = Recorder { replay: replay.id, tx };
        let writer = Writer {
            store: self.store.clone(),
            objects: self.objects.clone(),
            jobs: self.jobs.clone(),
            replay: replay.id,
            channel: channel.id,
            usage: self.usage.clone(),
        };
        let task = tokio::spawn(writer.run(rx));
        tracing::info!(channel_id = %channel.id, replay_id = %replay.id, "recording started");
        let previous = self
            .active
            .lock()
            .expect("recordings poisoned")
            .insert(channel.id, Active { window: window.clone(), recorder: recorder.clone(), task });
        if let Some(previous) = previous {
            // The old window ended without being closed here; close it now.
            let _ = previous.recorder.tx.try_send(Write::Finish);
        }
        Some(recorder)
    }

    /// Ends the channel's recording — only if it records `window`, when given, so that a late
    /// end of an old window never ends the next one. What is queued is written, then
    /// finalisation is queued; the returned task ends when that is done.
    pub fn finish(&self, channel: ChannelId, window: Option<&Arc<LiveChannel>>) -> Option<JoinHandle<()>> {
        let mut active = self.active.lock().expect("recordings poisoned");
        if window.is_some_and(|w| active.get(&channel).is_some_and(|a| !Arc::ptr_eq(&a.window, w))) {
            return None;
        }
        let active = active.remove(&channel)?;
        // The queue may be full; the writer then finishes when every sender is gone.
        let _ = active.recorder.tx.try_send(Write::Finish);
        Some(active.task)
    }

    /// Replays being recorded on this node now.
    pub fn recording(&self) -> Vec<ReplayId> {
        self.active.lock().expect("recordings poisoned").values().map(|a| a.recorder.replay).collect()
    }

    /// Queues finalisation for recordings nobody is writing: this node's own begun before this
    /// process started (left by a crash), and any whose node has been silent for `stale_after`.
    /// Returns how many were queued.
    pub async fn recover(&self, stale_after: Duration, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let running = self.recording();
        let stale_before = now - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::minutes(2));
        let mut queued = 0;
        let mut offset = 0;
        loop {
            let query = ReplayQuery {
                channel: None,
                status: Some(ReplayStatus::Recording),
                include_hidden: true,
                page: Page::new(Page::MAX_LIMIT, offset),
            };
            let page = self.store.list_replays(&query).await?;
            for replay in &page {
                let ours_before_restart = replay.node == self.node && replay.started_at < self.started_at;
                let orphaned = ours_before_restart || replay.heartbeat_at < stale_before;
                if orphaned && !running.contains(&replay.id) {
                    tracing::info!(replay_id = %replay.id, node = %replay.node, "finalising a recording left unfinished");
                    queue_finalise(&self.jobs, replay.id, now).await?;
                    queued += 1;
                }
            }
            if (page.len() as i64) < Page::MAX_LIMIT {
                return Ok(queued);
            }
            offset += Page::MAX_LIMIT;
        }
    }
}

async fn queue_finalise(jobs: &JobQueue, replay: ReplayId, now: DateTime<Utc>) -> Result<(), StoreError> {
    let payload = serde_json::json!({ "replay_id": replay });
    jobs.enqueue(FINALISE, &payload, Some(format!("{FINALISE}/{replay}")), 10, now).await.map(drop)
}

/// The task that writes one recording.
struct Writer {
    store: Arc<dyn Store>,
    objects: Objects,
    jobs: JobQueue,
    replay: ReplayId,
    channel: ChannelId,
    usage: Arc<UsageMeter>,
}

impl Writer {
    fn stored(&self, bytes: i64) {
        self.usage.add(Utc::now().date_naive(), Some(self.channel), Meter::StoredBytes, bytes);
    }

    async fn run(self, mut rx: mpsc::Receiver<Write>) {
        while let Some(write) = rx.recv().await {
            match write {
                Write::Init { rendition, version, bytes } => {
                    let size = bytes.len() as i64;
                    if self.put(&media_key(self.replay, rendition, MediaFile::Init(version)), vec![bytes]).await {
                        self.stored(size);
                        self.record(self.store.add_replay_bytes(self.replay, size, Utc::now()).await);
                    }
                }
                Write::Segment(s) => {
                    let size = s.parts.iter().map(Bytes::len).sum::<usize>() as i64;
                    if self.put(&media_key(self.replay, s.rendition, MediaFile::Segment(s.msn)), s.parts).await {
                        let row = ReplaySegment {
                            rendition: s.rendition.map(|r| r.to_string()),
                            msn: s.msn as i64,
                            init_version: s.init_version as i32,
                            discontinuity: s.discontinuity,
                            duration_ms: s.duration_ms,
                            bytes: size,
                        };
                        self.record(self.store.add_replay_segment(self.replay, row, Utc::now()).await);
                        metrics::counter!("olive_recording_bytes_total").increment(size as u64);
                        self.stored(size);
                    }
                }
                Write::Finish => break,
            }
        }
        match queue_finalise(&self.jobs, self.replay, Utc::now()).await {
            Ok(()) => tracing::info!(replay_id = %self.replay, "recording ended; finalising"),
            // The start-up and periodic sweeps find it later.
            Err(e) => tracing::error!(replay_id = %self.replay, error = %e, "could not queue finalisation"),
        }
    }

    /// Stores an object, retrying briefly; `false` if it could not be stored.
    async fn put(&self, key: &str, chunks: Vec<Bytes>) -> bool {
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=WRITE_ATTEMPTS {
            match self.objects.put_chunks(key, chunks.clone()).await {
                Ok(()) => return true,
                Err(e) if attempt == WRITE_ATTEMPTS => {
                    metrics::counter!("olive_recording_dropped_total").increment(1);
                    tracing::error!(replay_id = %self.replay, key, error = %e, "could not store a recording object; skipped");
                }
                Err(e) => {
                    tracing::warn!(replay_id = %self.replay, key, error = %e, "storing a recording object failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        false
    }

    fn record(&self, result: Result<(), StoreError>) {
        if let Err(e) = result {
            tracing::error!(replay_id = %self.replay, error = %e, "could not record a stored object in the database");
        }
    }
}

#[derive(serde::Deserialize)]
struct ReplayJob {
    replay_id: ReplayId,
}

fn replay_of(job: &Job) -> Result<ReplayId, JobError> {
    serde_json::from_str::<ReplayJob>(&job.payload)
        .map(|j| j.replay_id)
        .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

/// `recording.finalise`: writes the complete playlist beside the segments, then queues the
/// registration. A recording with no segment is deleted instead: there is nothing to replay.
pub struct Finalise {
    pub store: Arc<dyn Store>,
    pub objects: Objects,
    /// Where the playlist's bytes (and a dropped empty recording's) are counted.
    pub usage: Arc<UsageMeter>,
}

#[async_trait]
impl Handler for Finalise {
    fn kind(&self) -> &'static str {
        FINALISE
    }

    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let id = replay_of(job)?;
        let replay = match self.store.replay(id).await {
            Ok(replay) => replay,
            Err(StoreError::NotFound(_)) => return Ok(()), // deleted meanwhile
            Err(e) => return Err(retry(e)),
        };
        let segments = self.store.replay_segments(id).await.map_err(retry)?;
        if !segments.iter().any(|s| s.rendition.is_none()) {
            let removed = self.objects.delete_prefix(&prefix(id)).await.map_err(retry)?;
            let freed = i64::try_from(removed.bytes).unwrap_or(i64::MAX);
            self.usage.add(Utc::now().date_naive(), Some(replay.channel_id), Meter::StoredBytes, -freed);
            match self.store.delete_replay(id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(retry(e)),
            }
            tracing::info!(replay_id = %id, "recording had no media and was dropped");
            return Ok(());
        }
        // Every playlist beside its media: the source's, each rung's and the multivariant one.
        let mut files = vec![(playlist_key(id), playlist(&segments, None, true))];
        for rung in recorded_rungs(&segments) {
            files.push((format!("{}/{rung}/index.m3u8", prefix(id)), playlist(&segments, Some(rung), true)));
        }
        files.push((format!("{}/master.m3u8", prefix(id)), multivariant(&self.objects, id, &segments).await));
        for (key, text) in files {
            let Some(text) = text else { continue };
            let size = i64::try_from(text.len()).unwrap_or(i64::MAX);
            self.objects.put(&key, Bytes::from(text)).await.map_err(retry)?;
            self.usage.add(Utc::now().date_naive(), Some(replay.channel_id), Meter::StoredBytes, size);
        }
        let payload = serde_json::json!({ "replay_id": replay.id });
        JobQueue::new(self.store.clone())
            .enqueue(REGISTER, &payload, Some(format!("{REGISTER}/{id}")), 10, Utc::now())
            .await
            .map_err(retry)?;
        Ok(())
    }
}

/// `replay.register`: marks the replay ready with the channel's line-up and announces it with the
/// `replay.ready` webhook (queued once per replay, however often this runs), whose data `view`
/// writes (with the replay's URLs, which only the HTTP layer knows).
pub struct Register {
    pub store: Arc<dyn Store>,
    pub view: fn(&olive_store::Replay) -> serde_json::Value,
}

#[async_trait]
impl Handler for Register {
    fn kind(&self) -> &'static str {
        REGISTER
    }

    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let id = replay_of(job)?;
        let replay = match self.store.replay(id).await {
            Ok(replay) => replay,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(retry(e)),
        };
        if replay.status == ReplayStatus::Recording {
            let lineup = self.store.lineup(replay.channel_id).await.map_err(retry)?;
            // The last stored segment is the end of what can be replayed.
            let ended_at = replay.heartbeat_at.max(replay.started_at);
            self.store.finish_replay(id, ended_at, &lineup).await.map_err(retry)?;
            tracing::info!(replay_id = %id, duration_ms = replay.duration_ms, "replay ready");
        }
        let data = (self.view)(&replay);
        olive_jobs::webhooks::publish(
            self.store.as_ref(),
            "replay.ready",
            &format!("replay.ready/{id}"),
            data,
            Utc::now(),
        )
        .await
        .map_err(retry)?;
        Ok(())
    }
}
