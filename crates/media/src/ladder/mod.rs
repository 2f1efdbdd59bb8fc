//! Adaptive bitrate: a `standard` channel's live is also made into a ladder of smaller renditions
//! (rungs), each an LL-HLS window of its own, cut at the same media times as the source.
//!
//! [`Ladders`] is the node's side: how many ladders it can run (its transcode slots), whether it
//! has an encoder at all, and the ladder of each live. A [`Ladder`] is one live's: its rungs'
//! windows and packagers ([`olive_media_mux::rung`]), fed from two sides — the ingest session
//! hands it the source's cuts, keyframes and audio; the encoder process ([`process`]) hands it
//! each rung's encoded video. A live that cannot have a ladder (no encoder, no free slot, nothing
//! below the source's size, an encoder that keeps failing) plays as `basic`, and says why
//! ([`Fallback`]); it never waits for one.

pub mod encoder;
pub mod plan;
pub(crate) mod process;
pub mod remote;

use crate::live::LiveChannel;
use crate::record::{Recorder, SegmentWrite};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_core::ChannelId;
use olive_media_mux::rung::{Cut, RungPackager};
use olive_media_mux::{AudioConfig, FlvEvent, Output, Part, RungName};
use plan::{LadderSpec, PlannedRung};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use encoder::EncoderSettings;
pub use process::{encode_for_peer, measure_slots, probe_encoder};

/// What the operator chose for ladders.
#[derive(Debug, Clone)]
pub struct LadderSettings {
    pub spec: LadderSpec,
    pub encoder: EncoderSettings,
    /// How many ladders this node runs at once.
    pub slots: usize,
    /// Where each encoder's sockets live (a private folder per ladder is made inside).
    pub work_dir: PathBuf,
    /// How many times a live's encoder is restarted after it fails.
    pub restarts: u32,
}

impl Default for LadderSettings {
    fn default() -> Self {
        LadderSettings {
            spec: LadderSpec::default(),
            encoder: EncoderSettings::default(),
            slots: 0,
            work_dir: std::env::temp_dir(),
            restarts: 3,
        }
    }
}

/// Why a `standard` channel's live plays as `basic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum Fallback {
    /// This node has no encoder (`ffmpeg` with libx264 was not found or does not work).
    NoEncoder(String),
    /// Every transcode slot of this node is taken.
    NoSlot,
    /// Every transcode slot of this node is taken, and no other node took the ladder.
    NoFreeNode,
    /// The source is no taller than the smallest rung.
    NothingBelowSource,
    /// The encoder failed more often than it may be restarted.
    EncoderFailed(String),
}

impl Fallback {
    pub fn code(&self) -> &'static str {
        match self {
            Fallback::NoEncoder(_) => "no_encoder",
            Fallback::NoSlot => "no_slot",
            Fallback::NoFreeNode => "no_free_node",
            Fallback::NothingBelowSource => "nothing_below_source",
            Fallback::EncoderFailed(_) => "encoder_failed",
        }
    }
}

/// What a live's ladder is doing, for the studio and the channel API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LadderStatus {
    /// The live plays its ladder (`true`) or the source alone.
    pub running: bool,
    /// Why a `standard` channel's live plays as `basic`.
    pub fallback: Option<Fallback>,
    /// The ladder's rungs and encoder, while it has one.
    pub health: Option<LadderHealth>,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::NoEncoder(why) => write!(f, "this node has no encoder: {why}"),
            Fallback::NoSlot => f.write_str("every transcode slot of this node is taken"),
            Fallback::NoFreeNode => f.write_str("no node of the cluster has a free transcode slot"),
            Fallback::NothingBelowSource => f.write_str("the source is no taller than the smallest rung"),
            Fallback::EncoderFailed(why) => write!(f, "the encoder failed: {why}"),
        }
    }
}

/// A transcode slot, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Ladders>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
        self.0.publish_slots();
    }
}

/// The node's ladders and what it can take.
#[derive(Debug)]
pub struct Ladders {
    settings: LadderSettings,
    /// `Err` says why this node cannot transcode.
    encoder: Result<(), String>,
    total: AtomicUsize,
    used: AtomicUsize,
    ladders: RwLock<HashMap<ChannelId, Arc<Ladder>>>,
    /// Why each live that wanted a ladder plays as `basic`.
    fallbacks: RwLock<HashMap<ChannelId, Fallback>>,
    /// The other nodes that may encode this node's ladders, when there are any.
    cluster: Option<Cluster>,
    /// This node's ladders encoded (or waiting to be) on another node.
    placing: Mutex<HashMap<ChannelId, Placing>>,
}

/// How this node reaches the others for ladders.
#[derive(Clone)]
struct Cluster {
    bus: Arc<dyn olive_bus::Bus>,
    node: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish_non_exhaustive()
    }
}

/// A ladder of this node encoded elsewhere.
#[derive(Debug)]
struct Placing {
    job: remote::EncoderJob,
    /// Set while the ladder waits for a node to link.
    waiting: Option<tokio::sync::oneshot::Sender<remote::EncoderLink>>,
}

impl Ladders {
    /// `encoder` is what [`probe_encoder`] found.
    pub fn new(settings: LadderSettings, encoder: Result<(), String>) -> Self {
        let ladders = Ladders {
            total: AtomicUsize::new(settings.slots),
            settings,
            encoder,
            used: AtomicUsize::new(0),
            ladders: RwLock::new(HashMap::new()),
            fallbacks: RwLock::new(HashMap::new()),
            cluster: None,
            placing: Mutex::default(),
        };
        ladders.publish_slots();
        ladders
    }

    /// A node that makes no ladders (every live plays as `basic`, saying why).
    pub fn disabled(why: &str) -> Self {
        Self::new(LadderSettings::default(), Err(why.to_owned()))
    }

    /// Ladders this node cannot encode are placed on the other nodes of the cluster that `bus`
    /// joins (nothing changes on a one-process bus).
    pub fn with_cluster(mut self, bus: Arc<dyn olive_bus::Bus>, node: &str) -> Self {
        if bus.engine() != "memory" {
            self.cluster = Some(Cluster { bus, node: node.to_owned() });
        }
        self
    }

    /// Whether a ladder this node cannot encode may be encoded by another node.
    pub fn places_elsewhere(&self) -> bool {
        self.cluster.is_some()
    }

    /// This node's name in the cluster, if it is in one.
    pub fn node(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node.as_str())
    }

    /// Links node `node` as the encoder of the channel's ladder, if it waits for one: the
    /// transport's ends, with the job to send first. `None` when the ladder is not placed
    /// elsewhere or already has its encoder.
    pub fn link(&self, channel: ChannelId, node: &str) -> Option<remote::LinkEnds> {
        let mut placing = self.placing.lock().expect("placing map poisoned");
        let entry = placing.get_mut(&channel)?;
        let waiting = entry.waiting.take()?;
        let (link, ends) = remote::link(node, entry.job.clone());
        waiting.send(link).ok()?;
        Some(ends)
    }

    /// The ladder waits for a node to link; the receiver gets the link.
    pub(crate) fn wait_for_link(
        &self,
        job: &remote::EncoderJob,
    ) -> tokio::sync::oneshot::Receiver<remote::EncoderLink> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.placing
            .lock()
            .expect("placing map poisoned")
            .insert(job.channel, Placing { job: job.clone(), waiting: Some(tx) });
        rx
    }

    /// The ladder's encoding elsewhere ended.
    pub(crate) fn stop_placing(&self, channel: ChannelId) {
        self.placing.lock().expect("placing map poisoned").remove(&channel);
    }

    /// Tells the other nodes that the channel's ladder wants an encoder.
    pub(crate) async fn announce(&self, channel: ChannelId) {
        let Some(cluster) = &self.cluster else { return };
        let wanted = remote::Wanted { channel, node: cluster.node.clone() };
        let message = bytes::Bytes::from(serde_json::to_vec(&wanted).expect("serialisable"));
        if let Err(e) = cluster.bus.publish(remote::LADDERS_WANTED, message).await {
            tracing::warn!(channel_id = %channel, error = %e, "could not ask the cluster for an encoder");
        }
    }

    pub fn settings(&self) -> &LadderSettings {
        &self.settings
    }

    /// (used, total) transcode slots.
    pub fn slots(&self) -> (usize, usize) {
        let total = if self.encoder.is_ok() { self.total.load(Ordering::Acquire) } else { 0 };
        (self.used.load(Ordering::Acquire), total)
    }

    /// Sets how many ladders this node runs at once (after measuring).
    pub fn set_slots(&self, total: usize) {
        self.total.store(total, Ordering::Release);
        self.publish_slots();
    }

    /// Why this node cannot transcode, if it cannot.
    pub fn unavailable(&self) -> Option<&str> {
        self.encoder.as_ref().err().map(String::as_str)
    }

    fn publish_slots(&self) {
        let (used, total) = self.slots();
        metrics::gauge!("olive_transcode_slots", "state" => "used").set(used as f64);
        metrics::gauge!("olive_transcode_slots", "state" => "free").set(total.saturating_sub(used) as f64);
    }

    /// Takes a slot for a new ladder, or says why there is none.
    pub fn reserve(self: &Arc<Self>) -> Result<Slot, Fallback> {
        if let Err(why) = &self.encoder {
            return Err(Fallback::NoEncoder(why.clone()));
        }
        let total = self.total.load(Ordering::Acquire);
        let taken = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| (u < total).then_some(u + 1));
        if taken.is_err() {
            return Err(Fallback::NoSlot);
        }
        self.publish_slots();
        Ok(Slot(self.clone()))
    }

    /// Where a new ladder's encoder runs: in a slot here, else on another node of the cluster
    /// (when this node has no slot or no encoder), or nowhere, and why.
    pub(crate) fn place(self: &Arc<Self>) -> Result<process::Placement, Fallback> {
        match self.reserve() {
            Ok(slot) => Ok(process::Placement::Here(slot)),
            Err(Fallback::NoSlot | Fallback::NoEncoder(_)) if self.places_elsewhere() => {
                Ok(process::Placement::Elsewhere)
            }
            Err(why) => Err(why),
        }
    }

    /// The ladder of a channel's live on this node (running, or ended and not yet replaced).
    pub fn ladder(&self, channel: ChannelId) -> Option<Arc<Ladder>> {
        self.ladders.read().expect("ladder map poisoned").get(&channel).cloned()
    }

    /// Why the channel's current live plays as `basic`, if it wanted a ladder.
    pub fn fallback(&self, channel: ChannelId) -> Option<Fallback> {
        self.fallbacks.read().expect("fallback map poisoned").get(&channel).cloned()
    }

    pub(crate) fn set_fallback(&self, channel: ChannelId, fallback: Option<Fallback>) {
        let mut map = self.fallbacks.write().expect("fallback map poisoned");
        match fallback {
            Some(f) => {
                metrics::counter!("olive_ladder_fallbacks_total", "reason" => f.code()).increment(1);
                map.insert(channel, f);
            }
            None => {
                map.remove(&channel);
            }
        }
    }

    /// What the channel's live on this node does about its ladder.
    pub fn status(&self, channel: ChannelId) -> LadderStatus {
        let ladder = self.ladder(channel).filter(|l| !l.is_ended());
        LadderStatus {
            running: ladder.as_ref().is_some_and(|l| l.is_running()),
            fallback: self.fallback(channel),
            health: ladder.map(|l| l.health()),
        }
    }

    /// A ladder for a live whose source is `source`: the rungs' windows continue those of the
    /// channel's previous ladder when it has the same rungs and has not ended (a reconnect).
    pub(crate) fn begin(&self, channel: ChannelId, source: Arc<LiveChannel>, rungs: Vec<PlannedRung>) -> Arc<Ladder> {
        let mut map = self.ladders.write().expect("ladder map poisoned");
        let previous = map
            .get(&channel)
            .filter(|l| !l.is_ended() && l.rungs.iter().map(|r| r.plan.name).eq(rungs.iter().map(|r| r.name)));
        let (segment_ms, part_ms) = source.targets();
        let windows: Vec<Arc<LiveChannel>> = match previous {
            Some(p) => p.rungs.iter().map(|r| r.live.clone()).collect(),
            None => rungs.iter().map(|_| Arc::new(LiveChannel::new(segment_ms, part_ms, source.next_msn()))).collect(),
        };
        let ladder = Arc::new(Ladder {
            channel,
            source,
            rungs: rungs
                .into_iter()
                .zip(windows)
                .map(|(plan, live)| Rung {
                    plan,
                    live,
                    packager: Mutex::new(RungPackager::new()),
                    progress: Mutex::new(RungProgress::default()),
                    recording: Mutex::new(RungRecording::default()),
                })
                .collect(),
            state: Mutex::new(LadderState::default()),
            recorder: std::sync::OnceLock::new(),
            stopped: tokio::sync::watch::channel(false).0,
        });
        map.insert(channel, ladder.clone());
        ladder
    }
}

/// One rung of a live's ladder.
#[derive(Debug)]
pub struct Rung {
    pub plan: PlannedRung,
    pub live: Arc<LiveChannel>,
    packager: Mutex<RungPackager>,
    progress: Mutex<RungProgress>,
    recording: Mutex<RungRecording>,
}

/// What a rung's recording needs between its packager's outputs.
#[derive(Debug, Default)]
struct RungRecording {
    /// The init segment its parts need.
    init_version: u32,
    /// The next segment follows a new init segment after earlier ones.
    discontinuity: bool,
    /// The parts of the segment being cut, with their indexes.
    parts: Vec<(u32, Bytes)>,
}

#[derive(Debug, Default)]
struct RungProgress {
    /// Presentation time of the newest frame the encoder sent, stream milliseconds.
    last_ms: Option<i64>,
    /// Frames and bytes the encoder sent in the current second, and the last whole second's.
    window_start_ms: Option<i64>,
    frames: u32,
    bytes: u64,
    fps: f64,
    bitrate_bps: u64,
}

#[derive(Debug, Default)]
struct LadderState {
    /// Presentation time of the newest source frame handed to the encoder.
    source_ms: Option<i64>,
    /// Source frames the encoder could not take in time (skipped up to the next keyframe).
    skipped_frames: u64,
    ended: bool,
    /// The encoder is running (set by the process supervisor).
    running: bool,
    restarts: u32,
    cpu_seconds: f64,
    /// The node that encodes the ladder, when it is not this one.
    encoder_node: Option<String>,
    /// The source's audio, once its init segment went out (`Some(None)`: it has none); a
    /// restarted encoder's rungs are told again.
    source_audio: Option<Option<AudioConfig>>,
}

/// A live's ladder.
#[derive(Debug)]
pub struct Ladder {
    channel: ChannelId,
    source: Arc<LiveChannel>,
    pub rungs: Vec<Rung>,
    state: Mutex<LadderState>,
    /// The live's recording, which keeps every rung beside the source.
    recorder: std::sync::OnceLock<Recorder>,
    /// Set once the encoder is gone for good and every rung has flushed what it sent.
    stopped: tokio::sync::watch::Sender<bool>,
}

/// How one rung is doing, for the studio and the channel API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RungHealth {
    /// `480p`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// What the rung is encoded at.
    pub target_bitrate_bps: u64,
    /// Frames and bits per second the encoder made over the last second of media.
    pub fps: f64,
    pub bitrate_bps: u64,
    /// How far its newest frame is behind the newest source frame, in milliseconds of media.
    pub encoder_lag_ms: i64,
    /// Source parts the rung could not make.
    pub dropped_parts: u64,
}

/// How a live's ladder is doing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LadderHealth {
    pub running: bool,
    pub rungs: Vec<RungHealth>,
    /// Source frames skipped because the encoder could not keep up.
    pub skipped_source_frames: u64,
    /// The node that encodes the ladder, when it is not this one.
    pub encoder_node: Option<String>,
    pub restarts: u32,
    /// CPU the encoder spent for this live.
    pub cpu_seconds: f64,
}

impl Ladder {
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    pub fn rung(&self, name: RungName) -> Option<&Rung> {
        self.rungs.iter().find(|r| r.plan.name == name)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LadderState> {
        self.state.lock().expect("ladder state poisoned")
    }

    pub fn is_ended(&self) -> bool {
        self.state().ended
    }

    pub fn is_running(&self) -> bool {
        let s = self.state();
        s.running && !s.ended
    }

    /// No more media: every rung's playlist ends.
    pub fn end_stream(&self) {
        self.state().ended = true;
        for r in &self.rungs {
            r.live.end_stream();
        }
    }

    pub fn health(&self) -> LadderHealth {
        let s = self.state();
        let source_ms = s.source_ms;
        LadderHealth {
            running: s.running && !s.ended,
            skipped_source_frames: s.skipped_frames,
            encoder_node: s.encoder_node.clone(),
            restarts: s.restarts,
            cpu_seconds: s.cpu_seconds,
            rungs: self
                .rungs
                .iter()
                .map(|r| {
                    let p = r.progress.lock().expect("rung progress poisoned");
                    let dropped = r.packager.lock().expect("rung packager poisoned").dropped_parts();
                    RungHealth {
                        name: r.plan.name.to_string(),
                        width: r.plan.width,
                        height: r.plan.height,
                        target_bitrate_bps: u64::from(r.plan.video_kbps) * 1000,
                        fps: p.fps,
                        bitrate_bps: p.bitrate_bps,
                        encoder_lag_ms: match (source_ms, p.last_ms) {
                            (Some(s), Some(r)) => (s - r).max(0),
                            (Some(_), None) => -1,
                            _ => 0,
                        },
                        dropped_parts: dropped,
                    }
                })
                .collect(),
        }
    }

    /// Each rung's packager, and its window told what came out.
    fn each_rung(&self, mut f: impl FnMut(&mut RungPackager)) {
        for rung in &self.rungs {
            let mut packager = rung.packager.lock().expect("rung packager poisoned");
            f(&mut packager);
            rung.drain(&mut packager, self.source.session_origin(), self.recorder.get());
        }
    }

    /// The source's init segment went out with these tracks.
    pub(crate) fn source_started(&self, audio: Option<AudioConfig>) {
        self.state().source_audio = Some(audio.clone());
        self.each_rung(|p| p.source_started(audio.clone()));
    }

    pub(crate) fn source_keyframe(&self, ms: i64, cts_ms: i32) {
        self.each_rung(|p| p.source_keyframe(ms, cts_ms));
    }

    pub(crate) fn source_audio(&self, ms: i64, data: &Bytes) {
        self.each_rung(|p| p.source_audio(ms, data.clone()));
    }

    pub(crate) fn source_cut(&self, cut: Cut) {
        self.each_rung(|p| p.source_cut(cut));
    }

    /// A source frame at presentation time `ms` was handed to the encoder (`taken`) or skipped.
    pub(crate) fn source_fed(&self, ms: i64, taken: bool) {
        let mut s = self.state();
        s.source_ms = Some(ms);
        if !taken {
            s.skipped_frames += 1;
        }
    }

    /// The encoder sent `event` for rung `index`.
    pub(crate) fn rung_video(&self, index: usize, event: FlvEvent, bytes: usize) {
        let Some(rung) = self.rungs.get(index) else { return };
        if let FlvEvent::Video(f) = &event {
            let ms = i64::from(f.dts_ms) + i64::from(f.cts_ms);
            rung.progress.lock().expect("rung progress poisoned").frame(ms, bytes);
        }
        let mut packager = rung.packager.lock().expect("rung packager poisoned");
        packager.rung_video(event);
        rung.drain(&mut packager, self.source.session_origin(), self.recorder.get());
    }

    /// Rung `index`'s encoder output ended.
    pub(crate) fn rung_finished(&self, index: usize) {
        let Some(rung) = self.rungs.get(index) else { return };
        let mut packager = rung.packager.lock().expect("rung packager poisoned");
        packager.finish();
        rung.drain(&mut packager, self.source.session_origin(), self.recorder.get());
    }

    /// A restarted encoder: each rung starts again at the source's next segment.
    pub(crate) fn restart_rungs(&self) {
        let audio = {
            let mut state = self.state();
            state.restarts += 1;
            state.source_audio.clone()
        };
        for rung in &self.rungs {
            let mut packager = RungPackager::new();
            if let Some(audio) = &audio {
                packager.source_started(audio.clone());
            }
            *rung.packager.lock().expect("rung packager poisoned") = packager;
        }
    }

    /// The encoder stopped for good: every rung has packaged (and recorded) its last frames.
    pub(crate) fn set_stopped(&self) {
        self.stopped.send_replace(true);
    }

    /// Waits, at most `limit`, for the encoder to flush its rungs after the source ended; a
    /// recording finished before that would lose each rung's last segment.
    pub async fn flushed(&self, limit: std::time::Duration) {
        let mut stopped = self.stopped.subscribe();
        let _ = tokio::time::timeout(limit, stopped.wait_for(|s| *s)).await;
    }

    /// The rungs are recorded into the live's recording from now on.
    pub(crate) fn record_into(&self, recorder: Recorder) {
        let _ = self.recorder.set(recorder);
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.state().running = running;
    }

    /// The encoder now runs on `node` (`None`: this one).
    pub(crate) fn set_encoder_node(&self, node: Option<String>) {
        self.state().encoder_node = node;
    }

    pub(crate) fn add_cpu(&self, seconds: f64) {
        self.state().cpu_seconds += seconds;
    }

    pub(crate) fn restarts(&self) -> u32 {
        self.state().restarts
    }
}

impl RungProgress {
    fn frame(&mut self, ms: i64, bytes: usize) {
        self.last_ms = Some(self.last_ms.map_or(ms, |l| l.max(ms)));
        let start = *self.window_start_ms.get_or_insert(ms);
        if ms - start >= 1000 {
            let span = (ms - start) as f64 / 1000.0;
            self.fps = f64::from(self.frames) / span;
            self.bitrate_bps = (self.bytes as f64 * 8.0 / span) as u64;
            self.window_start_ms = Some(ms);
            self.frames = 0;
            self.bytes = 0;
        }
        self.frames += 1;
        self.bytes += bytes as u64;
    }
}

impl Rung {
    /// Segment `msn` of this rung is complete: its parts go to the recording.
    fn record_segment(&self, recorder: Option<&Recorder>, msn: u64, duration_ms: i64) {
        let Some(r) = recorder else { return };
        let mut recording = self.recording.lock().expect("rung recording poisoned");
        let parts = std::mem::take(&mut recording.parts);
        // Only a whole segment is playable on its own: one that lost a part (the encoder was
        // behind) is left out, and the replay's rung shows a gap there.
        if parts.is_empty() || parts.iter().enumerate().any(|(i, (index, _))| *index as usize != i) {
            return;
        }
        let parts = parts.into_iter().map(|(_, bytes)| bytes).collect();
        r.segment(SegmentWrite {
            rendition: Some(self.plan.name),
            msn,
            init_version: recording.init_version,
            discontinuity: std::mem::take(&mut recording.discontinuity),
            duration_ms,
            parts,
        });
    }

    /// Hands the packager's outputs to the window. A part is held until the next output: if that
    /// ends its segment, both are published together (see `LiveChannel::push_last_part`).
    /// With a `recorder`, each init segment and complete segment is recorded too.
    fn drain(&self, packager: &mut RungPackager, origin: DateTime<Utc>, recorder: Option<&Recorder>) {
        let mut held: Option<Part> = None;
        while let Some(output) = packager.poll_output() {
            if let Some(part) = held.take() {
                match &output {
                    Output::SegmentEnd { segment, duration_ms } if *segment == part.segment => {
                        self.live.push_last_part(part, *duration_ms);
                        self.record_segment(recorder, *segment, *duration_ms);
                        continue;
                    }
                    _ => self.live.push_part(part),
                }
            }
            match output {
                Output::Init { bytes, video, audio } => {
                    let version = self.live.begin_session_with(bytes.clone(), origin, video, audio);
                    let mut recording = self.recording.lock().expect("rung recording poisoned");
                    recording.init_version = version;
                    recording.discontinuity = version > 1;
                    recording.parts.clear();
                    if let Some(r) = recorder {
                        r.init(Some(self.plan.name), version, bytes);
                    }
                }
                Output::Part(part) => {
                    if recorder.is_some() {
                        self.recording
                            .lock()
                            .expect("rung recording poisoned")
                            .parts
                            .push((part.index, part.bytes.clone()));
                    }
                    held = Some(part);
                }
                Output::SegmentEnd { segment, duration_ms } => {
                    self.live.end_segment(segment, duration_ms);
                    self.record_segment(recorder, segment, duration_ms);
                }
            }
        }
        if let Some(part) = held {
            self.live.push_part(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olive_media_mux::rung::Cut;
    use olive_media_mux::{VideoConfig, VideoFrame};

    fn video_config() -> VideoConfig {
        VideoConfig {
            profile: 100,
            compatibility: 0,
            level: 30,
            nal_length_size: 4,
            sps: vec![Bytes::from_static(&[0x67, 0x64, 0, 0x1e])],
            pps: vec![Bytes::from_static(&[0x68, 0xee])],
            width: 854,
            height: 480,
            frame_rate: Some(30.0),
        }
    }

    fn rung(height: u16) -> PlannedRung {
        PlannedRung { name: RungName(height), width: 854, height: u32::from(height), video_kbps: 1200, fps: None }
    }

    fn ladders(slots: usize) -> Arc<Ladders> {
        Arc::new(Ladders::new(LadderSettings { slots, ..Default::default() }, Ok(())))
    }

    #[test]
    fn slots_are_counted_and_given_back() {
        let ladders = ladders(1);
        let slot = ladders.reserve().unwrap();
        assert_eq!(ladders.reserve().unwrap_err(), Fallback::NoSlot);
        assert_eq!(ladders.slots(), (1, 1));
        drop(slot);
        assert!(ladders.reserve().is_ok());
        let none = Arc::new(Ladders::disabled("ffmpeg is not installed"));
        assert_eq!(none.reserve().unwrap_err(), Fallback::NoEncoder("ffmpeg is not installed".into()));
        assert_eq!(none.slots(), (0, 0));
    }

    /// A ladder placed elsewhere takes one encoder at a time, and only while it waits for one.
    #[test]
    fn one_node_links_to_a_waiting_ladder() {
        let ladders = ladders(0);
        let channel = ChannelId(7);
        let job = remote::EncoderJob::new(channel, &[rung(480)], None);
        assert!(ladders.link(channel, "node-b").is_none(), "nothing waits yet");
        let mut waiting = ladders.wait_for_link(&job);
        let ends = ladders.link(channel, "node-b").expect("it waits");
        assert_eq!(ends.job, job);
        assert!(ladders.link(channel, "node-c").is_none(), "one encoder at a time");
        assert_eq!(waiting.try_recv().unwrap().node, "node-b");
        let _again = ladders.wait_for_link(&job);
        ladders.stop_placing(channel);
        assert!(ladders.link(channel, "node-c").is_none(), "the ladder ended");
    }

    /// A restarted encoder's rungs begin again at the next segment, with the source's audio they
    /// were told of before the restart.
    #[test]
    fn a_restarted_encoder_picks_up_at_the_next_segment() {
        let ladders = ladders(1);
        let source = Arc::new(LiveChannel::new(2000, 500, 10));
        source.begin_session(Bytes::from_static(b"init"), Utc::now());
        let ladder = ladders.begin(ChannelId(7), source, vec![rung(480)]);
        ladder.source_started(None);
        ladder.restart_rungs();
        ladder.source_keyframe(0, 0);
        ladder.rung_video(0, FlvEvent::VideoConfig(video_config()), 0);
        for i in 0..20i64 {
            let frame = VideoFrame {
                dts_ms: (i * 33) as u32,
                cts_ms: 0,
                keyframe: i == 0,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            };
            ladder.rung_video(0, FlvEvent::Video(frame), 5);
        }
        ladder.source_cut(Cut { segment: 10, index: 0, start_ms: 0, duration_ms: 467, segment_ms: None });
        let window = &ladder.rungs[0].live;
        assert!(window.init(1).is_some(), "the rung's init segment went out");
        assert_eq!(window.last_part(), Some((10, 0)));
        assert_eq!(ladder.health().restarts, 1);
        // Ending the live ends every rung's playlist.
        ladder.end_stream();
        assert!(window.is_ended() && ladder.is_ended());
    }
}
