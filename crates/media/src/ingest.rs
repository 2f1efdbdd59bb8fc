//! RTMP ingest. `scuffle-rtmp` speaks the protocol and hands us publish requests and FLV tag
//! payloads; this module decides who may publish where and feeds the packager.
//!
//! A publish is accepted only for the app `live` with a stream key that belongs to a channel no
//! one is publishing to. Refusing means returning an error from `on_publish`: the crate then
//! closes the connection (it has no dedicated "refused" error, so we log the reason ourselves).
//! A clean unpublish ends the playlist at once; a dropped connection keeps the window open for the
//! reconnect grace, so a broadcaster who comes back continues the same playlist after an
//! `EXT-X-DISCONTINUITY`. Malformed tags are counted and skipped, never fatal.

use crate::eof::EofIsError;
use crate::health::HealthTracker;
use crate::ladder::process::Placement;
use crate::ladder::{plan, process, Fallback};
use crate::live::LiveChannel;
use crate::record::{Recorder, Recordings, SegmentWrite};
use crate::stream_events::{StreamEvent, StreamEventKind};
use crate::thumbnail::{thread_cpu_time, Pacer, Thumbnails};
use crate::LiveMedia;
use bytes::Bytes;
use chrono::Utc;
use olive_bus::{topics, Bus};
use olive_core::{AddressKey, ChannelId};
use olive_media_mux::flv::{demux_audio, demux_video};
use olive_media_mux::rung::Cut;
use olive_media_mux::{FlvEvent, Output, Packager, Part, VideoConfig};
use olive_store::{ChannelPatch, ChannelStatus, ChannelType, Meter, Store};
use scuffle_rtmp::session::server::{ServerSessionError, SessionData, SessionHandler};
use scuffle_rtmp::ServerSession;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How long an ended live waits for its encoder to flush the rungs before its recording ends.
const LADDER_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// What ingest sessions share.
pub struct Ingest {
    pub media: Arc<LiveMedia>,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub recordings: Arc<Recordings>,
    pub thumbnails: Arc<Thumbnails>,
}

impl Ingest {
    /// Shows offline the channels the database shows live but no node holds (their node died),
    /// once every `every`, forever.
    pub async fn sweep_orphans(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep_orphans_once().await;
        }
    }

    /// One sweep: see [`sweep_orphans`](Self::sweep_orphans).
    pub async fn sweep_orphans_once(&self) {
        let live: Vec<ChannelId> = match self.store.list_channels().await {
            Ok(channels) => channels.iter().filter(|c| c.status == ChannelStatus::Live).map(|c| c.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list channels to find lives without a node");
                return;
            }
        };
        let registry = self.media.registry();
        for channel in registry.orphans(&live).await {
            tracing::warn!(channel_id = %channel, "a live's node stopped holding it; the channel is shown offline");
            self.set_live(channel, false).await;
            registry.end_sweep(channel).await;
        }
    }

    /// Records a channel going live or offline: database status, cache invalidation, a bus event,
    /// the gauge, and (going offline) the channel's lease. Failures are logged; the stream itself
    /// goes on.
    async fn set_live(&self, channel: ChannelId, live: bool) {
        let status = if live { ChannelStatus::Live } else { ChannelStatus::Offline };
        let patch = ChannelPatch { status: Some(status), ..Default::default() };
        if let Err(e) = self.store.update_channel(channel, patch).await {
            tracing::error!(channel_id = %channel, error = %e, "could not record the channel's status");
        }
        let _ = self.bus.publish(topics::CACHE_INVALIDATE, topics::CacheNotice::Channels.to_bytes()).await;
        let kind = if live { StreamEventKind::Started } else { StreamEventKind::Ended };
        let event = StreamEvent { kind, channel_id: channel, at: Utc::now() };
        let _ = self.bus.publish(topics::STREAM_EVENTS, event.to_bytes()).await;
        if !live {
            self.media.registry().release(channel).await;
            self.thumbnails.forget(channel);
        }
        metrics::gauge!("olive_channels_live").set(self.media.live_channels().len() as f64);
        let label = channel.to_string();
        metrics::gauge!("olive_channel_live", "channel" => label.clone()).set(if live { 1.0 } else { 0.0 });
        if !live {
            metrics::gauge!("olive_ingest_bitrate_bps", "channel" => label.clone()).set(0.0);
            metrics::gauge!("olive_ingest_fps", "channel" => label).set(0.0);
        }
    }
}

impl Ingest {
    /// The channel's ladder ends with its live.
    fn end_ladder(&self, channel: ChannelId) {
        let ladders = self.media.ladders();
        if let Some(ladder) = ladders.ladder(channel) {
            ladder.end_stream();
        }
        ladders.set_fallback(channel, None);
    }
}

/// Where a publishing session's ladder is.
enum LadderFeed {
    /// A `basic` channel, or a `standard` one that could not have a ladder.
    None,
    /// The encoder is placed (a slot here, or another node); it starts with the source's
    /// first keyframe.
    Waiting(Placement),
    Running(process::Feed),
}

/// The connections of each client address that have not published yet: an encoder publishes
/// within a second of connecting, so a few per address is plenty, and a client that opens many
/// and never publishes holds no more than that.
#[derive(Default)]
struct Unpublished(std::sync::Mutex<std::collections::HashMap<AddressKey, usize>>);

/// One connection counted in [`Unpublished`] until it publishes or ends.
struct NotYetPublished {
    counts: Arc<Unpublished>,
    address: AddressKey,
}

impl Unpublished {
    fn admit(self: &Arc<Self>, address: AddressKey, limit: usize) -> Option<NotYetPublished> {
        let mut counts = self.0.lock().expect("rtmp counts poisoned");
        let count = counts.entry(address).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(NotYetPublished { counts: self.clone(), address })
    }
}

impl Drop for NotYetPublished {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().expect("rtmp counts poisoned");
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// Resolves once `timeout` has passed with no publish accepted on the connection.
async fn unpublished_after(timeout: std::time::Duration, mut published: tokio::sync::watch::Receiver<bool>) {
    tokio::time::sleep(timeout).await;
    if !*published.borrow_and_update() {
        return;
    }
    std::future::pending::<()>().await;
}

/// Accepts RTMP connections until `shutdown` resolves, then ends every session and marks their
/// channels offline. A connection must publish with a valid key within the settings'
/// `publish_timeout`, and one address may hold only `unpublished_per_address` connections that
/// have not.
pub async fn serve(listener: TcpListener, ingest: Arc<Ingest>, shutdown: impl Future<Output = ()>) {
    let settings = ingest.media.settings();
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let unpublished = Arc::new(Unpublished::default());
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                metrics::gauge!("olive_rtmp_connections").set(sessions.len() as f64);
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::warn!("an rtmp session panicked on malformed input and was dropped");
                    }
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "rtmp accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many rtmp connections; refusing");
                    continue;
                };
                let address = AddressKey::of(peer.ip());
                let Some(waiting) = unpublished.admit(address, settings.unpublished_per_address) else {
                    metrics::counter!("olive_rtmp_refused_total", "reason" => "unpublished_per_address").increment(1);
                    tracing::warn!(%peer, "too many rtmp connections from one address that have not published; refusing");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (published_tx, published) = tokio::sync::watch::channel(false);
                let handler = Handler {
                    ingest: ingest.clone(),
                    peer,
                    publisher: None,
                    waiting: Some(waiting),
                    published: published_tx,
                };
                let timeout = settings.publish_timeout;
                sessions.spawn(async move {
                    let _permit = permit;
                    let session = ServerSession::new(EofIsError(stream), handler)
                        .with_message_limits(settings.max_message_before_publish, settings.max_message);
                    tokio::select! {
                        ended = session.run() => if let Err(e) = ended {
                            tracing::debug!(%peer, error = %e, "rtmp session ended with an error");
                        },
                        () = unpublished_after(timeout, published) => {
                            metrics::counter!("olive_rtmp_refused_total", "reason" => "publish_timeout").increment(1);
                            tracing::warn!(%peer, seconds = timeout.as_secs(), "rtmp connection closed: no valid publish in time");
                        }
                    }
                });
                metrics::gauge!("olive_rtmp_connections").set(sessions.len() as f64);
            }
        }
    }
    sessions.shutdown().await;
    // Lives publishing or in their reconnect grace end, and their recordings are finished; then
    // wait until every one is written out.
    let mut closing = Vec::new();
    for channel in ingest.media.channels_with_windows() {
        if let Some(live) = ingest.media.channel(channel).filter(|l| !l.is_ended()) {
            live.end_stream();
            ingest.end_ladder(channel);
            ingest.set_live(channel, false).await;
        }
        closing.extend(ingest.recordings.finish(channel, None));
    }
    for task in closing {
        let _ = task.await;
    }
}

/// One channel being published on this connection.
struct Publisher {
    channel: ChannelId,
    session: u64,
    live: Arc<LiveChannel>,
    packager: Packager,
    health: HealthTracker,
    recorder: Option<Recorder>,
    /// The init segment this session's media needs.
    init_version: u32,
    /// The parts of the segment being cut, for the recorder.
    segment_parts: Vec<Bytes>,
    /// The next segment is recorded after a discontinuity: it is the first under a new init
    /// segment (a reconnect, or a new resolution) and earlier ones were recorded.
    discontinuity: bool,
    video_config: Option<Arc<VideoConfig>>,
    thumbnails: Pacer,
    /// Payload bytes and CPU time not yet handed to the usage meter.
    unmetered_bytes: u64,
    unmetered_cpu: std::time::Duration,
    ladder: LadderFeed,
    /// The source's AVC sequence header as sent (the encoder's first tag).
    sequence_header: Option<Bytes>,
}

impl Publisher {
    /// `payload` is the tag payload as the broadcaster sent it (what the encoder is given).
    fn feed(&mut self, ingest: &Ingest, event: FlvEvent, payload: &Bytes) {
        let bytes = payload.len();
        let cpu = thread_cpu_time();
        self.handle(ingest, event, payload);
        self.unmetered_bytes += bytes as u64;
        self.unmetered_cpu += thread_cpu_time().saturating_sub(cpu);
    }

    /// Hands what this session used since the last call to the usage meter (whole milliseconds of
    /// CPU; the rest waits for the next call).
    fn meter(&mut self, ingest: &Ingest) {
        let (usage, day) = (ingest.media.usage(), Utc::now().date_naive());
        let bytes = std::mem::take(&mut self.unmetered_bytes);
        usage.add(day, Some(self.channel), Meter::IngestBytes, i64::try_from(bytes).unwrap_or(i64::MAX));
        let ms = self.unmetered_cpu.as_millis();
        self.unmetered_cpu -= std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
        usage.add(day, Some(self.channel), Meter::CpuMs, i64::try_from(ms).unwrap_or(i64::MAX));
    }

    fn handle(&mut self, ingest: &Ingest, event: FlvEvent, payload: &Bytes) {
        let bytes = payload.len();
        let now = Instant::now();
        let snapshot = match &event {
            FlvEvent::VideoConfig(c) => {
                self.health.video_config(c);
                self.video_config = Some(Arc::new(c.clone()));
                None
            }
            FlvEvent::Video(f) if f.keyframe => {
                // A running ladder's encoder makes the thumbnails from pictures it decodes anyway.
                let encoder_thumbnails =
                    matches!(&self.ladder, LadderFeed::Running(feed) if feed.ladder().is_running());
                if let (Some(config), false) = (&self.video_config, encoder_thumbnails) {
                    let replay = self.recorder.as_ref().map(Recorder::replay);
                    let (dts, data) = (i64::from(f.dts_ms), f.data.clone());
                    ingest.thumbnails.offer(&mut self.thumbnails, self.channel, replay, config, dts, data);
                }
                self.health.frame(now, bytes, true, Some(i64::from(f.dts_ms)))
            }
            FlvEvent::AudioConfig(c) => {
                self.health.audio_config(c);
                None
            }
            FlvEvent::Video(f) => self.health.frame(now, bytes, true, f.keyframe.then_some(i64::from(f.dts_ms))),
            FlvEvent::Audio(_) => self.health.frame(now, bytes, false, None),
            FlvEvent::Ignored(_) => None,
        };
        if let Some(s) = snapshot {
            let label = self.channel.to_string();
            metrics::gauge!("olive_ingest_bitrate_bps", "channel" => label.clone()).set(s.bitrate_bps as f64);
            metrics::gauge!("olive_ingest_fps", "channel" => label.clone()).set(s.fps);
            if let Some(ms) = s.keyframe_interval_ms {
                metrics::gauge!("olive_ingest_keyframe_interval_seconds", "channel" => label.clone())
                    .set(ms as f64 / 1e3);
            }
            let last_frame = Utc::now() - chrono::Duration::milliseconds(s.ms_since_last_frame as i64);
            metrics::gauge!("olive_ingest_last_frame_timestamp_seconds", "channel" => label)
                .set(last_frame.timestamp_millis() as f64 / 1e3);
            ingest.media.set_health(self.channel, s);
            self.meter(ingest);
        }
        // What the ladder needs of the event, before the packager takes it.
        if let FlvEvent::VideoConfig(_) = &event {
            self.sequence_header = Some(payload.clone());
            if let LadderFeed::Running(feed) = &mut self.ladder {
                feed.sequence_header(payload);
            }
        }
        // (A waiting ladder starts on this very frame, in `drain`, and needs it too.)
        let wanted = !matches!(self.ladder, LadderFeed::None);
        let for_ladder = match &event {
            FlvEvent::Video(f) if wanted => Some((f.keyframe, f.cts_ms, None)),
            FlvEvent::Audio(f) if wanted => Some((false, 0, Some(f.data.clone()))),
            _ => None,
        };
        self.packager.handle(event);
        let accepted = self.packager.accepted_ms();
        self.drain(ingest);
        // Cuts first (in `drain`), then the frame that made them: an encoder can never answer
        // with a frame whose part the ladder has not been told about.
        if let (LadderFeed::Running(feed), Some(ms), Some((keyframe, cts_ms, audio))) =
            (&mut self.ladder, accepted, for_ladder)
        {
            match audio {
                Some(data) => feed.ladder().source_audio(ms, &data),
                None => {
                    if keyframe {
                        feed.ladder().source_keyframe(ms, cts_ms);
                    }
                    feed.video(ms, cts_ms, keyframe, payload);
                }
            }
        }
    }

    /// The source's init segment went out: a waiting ladder is planned from its picture and its
    /// encoder started, or the live plays as `basic` and says why.
    fn start_ladder(
        &mut self,
        ingest: &Ingest,
        video: Option<&VideoConfig>,
        audio: Option<&olive_media_mux::AudioConfig>,
    ) {
        let placement = match std::mem::replace(&mut self.ladder, LadderFeed::None) {
            LadderFeed::Waiting(placement) => placement,
            other => {
                self.ladder = other;
                return;
            }
        };
        let ladders = ingest.media.ladders();
        let rungs =
            video.map_or_else(Vec::new, |v| plan::plan(&ladders.settings().spec, v.width, v.height, v.frame_rate));
        if rungs.is_empty() {
            tracing::info!(channel_id = %self.channel, "nothing to make below the source's size; the live plays as basic");
            ladders.set_fallback(self.channel, Some(Fallback::NothingBelowSource));
            return;
        }
        let names: Vec<String> = rungs.iter().map(|r| r.name.to_string()).collect();
        tracing::info!(channel_id = %self.channel, rungs = %names.join(","), "ladder starting");
        let ladder = ladders.begin(self.channel, self.live.clone(), rungs);
        if let Some(recorder) = &self.recorder {
            ladder.record_into(recorder.clone());
        }
        ladder.source_started(audio.cloned());
        let thumbnails = video.map(|v| {
            let (width, height) = crate::thumbnail::thumbnail_size(v.width, v.height);
            process::ThumbnailSink {
                thumbnails: ingest.thumbnails.clone(),
                replay: self.recorder.as_ref().map(Recorder::replay),
                output: crate::ladder::encoder::ThumbnailOutput {
                    // Even sides: 4:2:0 chroma covers two pixels each way.
                    width: (width & !1).max(2),
                    height: (height & !1).max(2),
                    interval_s: (self.thumbnails.interval_ms() / 1000).max(1) as u32,
                },
            }
        });
        let mut feed = process::start(ladders.clone(), ladder, placement, ingest.media.usage().clone(), thumbnails);
        if let Some(header) = &self.sequence_header {
            feed.sequence_header(header);
        }
        self.ladder = LadderFeed::Running(feed);
    }

    /// A source part went to the window: the ladder cuts its rungs there too.
    fn cut(&self, part: &Part, segment_ms: Option<i64>) {
        if let LadderFeed::Running(feed) = &self.ladder {
            feed.ladder().source_cut(Cut { segment_ms, ..Cut::of(part) });
        }
    }

    fn drain(&mut self, ingest: &Ingest) {
        // A part is held until the next output: if that ends its segment, both are published
        // together (see `LiveChannel::push_last_part`).
        let mut held: Option<olive_media_mux::Part> = None;
        while let Some(output) = self.packager.poll_output() {
            if let Some(part) = held.take() {
                match &output {
                    Output::SegmentEnd { segment, duration_ms } if *segment == part.segment => {
                        self.cut(&part, Some(*duration_ms));
                        self.live.push_last_part(part, *duration_ms);
                        self.end_segment(*segment, *duration_ms, false);
                        continue;
                    }
                    _ => {
                        self.cut(&part, None);
                        self.live.push_part(part);
                    }
                }
            }
            match output {
                Output::Init { bytes, video, audio } => {
                    let first = self.init_version == 0;
                    self.init_version = if first {
                        self.live.begin_session_with(bytes.clone(), Utc::now(), video.clone(), audio.clone())
                    } else {
                        // A new resolution mid-stream. A running ladder keeps its rungs (players
                        // hold their list): the encoder scales the new pictures to them.
                        tracing::info!(channel_id = %self.channel, width = video.as_ref().map(|v| v.width),
                            height = video.as_ref().map(|v| v.height), "the source changed its encoding");
                        self.live.reconfigure(bytes.clone(), video.clone(), audio.clone())
                    };
                    self.discontinuity = self.init_version > 1;
                    self.start_ladder(ingest, video.as_ref(), audio.as_ref());
                    if let Some(r) = &self.recorder {
                        r.init(None, self.init_version, bytes);
                    }
                }
                Output::Part(part) => {
                    if self.recorder.is_some() {
                        self.segment_parts.push(part.bytes.clone());
                    }
                    held = Some(part);
                }
                Output::SegmentEnd { segment, duration_ms } => self.end_segment(segment, duration_ms, true),
            }
        }
        if let Some(part) = held {
            self.cut(&part, None);
            self.live.push_part(part);
        }
    }

    /// A segment was cut: the window learns it (unless already told with its last part) and the
    /// recorder gets its parts.
    fn end_segment(&mut self, segment: u64, duration_ms: i64, tell_window: bool) {
        if tell_window {
            self.live.end_segment(segment, duration_ms);
        }
        if let Some(r) = &self.recorder {
            r.segment(SegmentWrite {
                rendition: None,
                msn: segment,
                init_version: self.init_version,
                discontinuity: std::mem::take(&mut self.discontinuity),
                duration_ms,
                parts: std::mem::take(&mut self.segment_parts),
            });
        }
    }

    fn finish(&mut self, ingest: &Ingest) {
        self.packager.finish();
        self.drain(ingest);
        // The encoder's input closes: it flushes its rungs and stops.
        self.ladder = LadderFeed::None;
    }
}

struct Handler {
    ingest: Arc<Ingest>,
    peer: SocketAddr,
    publisher: Option<Publisher>,
    /// Counted against the peer's address until a publish is accepted.
    waiting: Option<NotYetPublished>,
    /// Set once a publish is accepted: the connection's deadline no longer applies.
    published: tokio::sync::watch::Sender<bool>,
}

/// scuffle-rtmp closes the connection on any handler error; it has no variant for "refused".
fn refused() -> ServerSessionError {
    ServerSessionError::PlayNotSupported
}

impl Handler {
    /// Ends publishing. `clean`: the broadcaster said so, end the playlist now; otherwise the
    /// connection dropped, and the window waits for a reconnect before ending.
    fn stop(&mut self, clean: bool) {
        let Some(mut p) = self.publisher.take() else { return };
        p.finish(&self.ingest);
        p.meter(&self.ingest);
        let media = self.ingest.media.clone();
        media.release(p.channel, p.session);
        let ingest = self.ingest.clone();
        let (channel, live) = (p.channel, p.live.clone());
        tracing::info!(channel_id = %channel, peer = %self.peer, clean, "publishing stopped");
        let grace = if clean { std::time::Duration::ZERO } else { media.settings().reconnect_grace };
        // Dropped while the runtime shuts down there is nothing to wait for: `serve` marks
        // every channel offline itself.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            if media.is_publishing(channel) {
                return; // the broadcaster came back
            }
            // The encoder flushes its rungs' last frames into the recording first.
            if let Some(ladder) = media.ladders().ladder(channel).filter(|l| !l.is_ended()) {
                ladder.flushed(LADDER_FLUSH).await;
                if media.is_publishing(channel) {
                    return;
                }
            }
            live.end_stream();
            ingest.end_ladder(channel);
            ingest.recordings.finish(channel, Some(&live));
            ingest.set_live(channel, false).await;
        });
    }
}

impl SessionHandler for Handler {
    async fn on_publish(
        &mut self,
        _stream_id: u32,
        app_name: &str,
        stream_name: &str,
    ) -> Result<(), ServerSessionError> {
        if self.publisher.is_some() {
            tracing::warn!(peer = %self.peer, "a second publish on one connection refused");
            return Err(refused());
        }
        if app_name != "live" {
            tracing::warn!(peer = %self.peer, app = app_name, "publish to an unknown app refused");
            return Err(refused());
        }
        let channel =
            match olive_commerce::channels::channel_for_stream_key(self.ingest.store.as_ref(), stream_name).await {
                Ok(Some(channel)) => channel,
                Ok(None) => {
                    tracing::warn!(peer = %self.peer, "publish with an unknown stream key refused");
                    return Err(refused());
                }
                Err(e) => {
                    tracing::error!(peer = %self.peer, error = %e, "stream key check failed; publish refused");
                    return Err(refused());
                }
            };
        if let Err(held) = self.ingest.media.registry().claim(channel.id).await {
            tracing::warn!(peer = %self.peer, channel_id = %channel.id, node = held.0, "channel is live on another node; refused");
            return Err(refused());
        }
        let Some((session, live)) = self.ingest.media.claim(channel.id) else {
            tracing::warn!(peer = %self.peer, channel_id = %channel.id, "channel already has a publisher; refused");
            return Err(refused());
        };
        let packager = Packager::new(self.ingest.media.settings().packager, live.next_msn());
        let ladders = self.ingest.media.ladders();
        let ladder = match channel.kind {
            ChannelType::Basic => {
                ladders.set_fallback(channel.id, None);
                LadderFeed::None
            }
            ChannelType::Standard => match ladders.place() {
                Ok(placement) => {
                    if matches!(placement, Placement::Elsewhere) {
                        tracing::info!(channel_id = %channel.id, "no transcode slot here; the ladder is offered to the cluster");
                    }
                    ladders.set_fallback(channel.id, None);
                    LadderFeed::Waiting(placement)
                }
                Err(why) => {
                    tracing::info!(channel_id = %channel.id, reason = %why, "the live plays as basic");
                    ladders.set_fallback(channel.id, Some(why));
                    LadderFeed::None
                }
            },
        };
        let recorder = self.ingest.recordings.recorder(&channel, &live).await;
        self.publisher = Some(Publisher {
            channel: channel.id,
            session,
            live,
            packager,
            health: HealthTracker::new(Instant::now(), Utc::now()),
            recorder,
            init_version: 0,
            segment_parts: Vec::new(),
            discontinuity: false,
            video_config: None,
            thumbnails: Pacer::new(channel.thumbnail_interval_s),
            unmetered_bytes: 0,
            unmetered_cpu: std::time::Duration::ZERO,
            ladder,
            sequence_header: None,
        });
        tracing::info!(channel_id = %channel.id, peer = %self.peer, "publishing started");
        self.waiting = None;
        self.published.send_replace(true);
        self.ingest.set_live(channel.id, true).await;
        Ok(())
    }

    /// Logged by name only: `releaseStream` and `FCPublish` carry the stream key.
    async fn on_unknown_command(
        &mut self,
        _stream_id: u32,
        command: scuffle_rtmp::command_messages::UnknownCommand<'_>,
    ) -> Result<(), ServerSessionError> {
        tracing::debug!(peer = %self.peer, command = %command.command_name.as_str(), "rtmp command ignored");
        Ok(())
    }

    /// Logged by type only.
    async fn on_unknown_message(
        &mut self,
        _stream_id: u32,
        message: scuffle_rtmp::messages::UnknownMessage,
    ) -> Result<(), ServerSessionError> {
        tracing::debug!(peer = %self.peer, kind = ?message.msg_type_id, bytes = message.data.len(), "rtmp message ignored");
        Ok(())
    }

    async fn on_unpublish(&mut self, _stream_id: u32) -> Result<(), ServerSessionError> {
        self.stop(true);
        Ok(())
    }

    async fn on_data(&mut self, _stream_id: u32, data: SessionData) -> Result<(), ServerSessionError> {
        let Some(p) = &mut self.publisher else { return Ok(()) };
        let (event, payload) = match data {
            SessionData::Video { timestamp, data } => (demux_video(timestamp, data.clone()), data),
            SessionData::Audio { timestamp, data } => (demux_audio(timestamp, data.clone()), data),
            SessionData::Amf0 { .. } => return Ok(()),
        };
        match event {
            Ok(event) => p.feed(&self.ingest, event, &payload),
            Err(e) => {
                p.health.malformed();
                tracing::debug!(channel_id = %p.channel, error = %e, "malformed tag skipped");
            }
        }
        Ok(())
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        self.stop(false);
    }
}
