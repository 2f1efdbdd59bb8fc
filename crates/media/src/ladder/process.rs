//! The encoder process of one live, supervised: started when the source's first keyframe
//! arrives, fed the source's video as FLV through its standard input, read back one Unix socket
//! per rung, restarted (at the source's next keyframe) when it fails, and stopped when the live
//! ends. Its CPU time is charged to the channel. Nothing here decides alignment: it only moves
//! bytes between the process and [`Ladder`].
//!
//! The process runs here ([`Placement::Here`]) or on another node ([`Placement::Elsewhere`],
//! see [`remote`]): either way the source goes out as the same FLV bytes ([`feed`]) and what
//! comes back goes into the ladder through the same [`LadderOutput`]. A node encoding for
//! another runs the same process ([`encode_for_peer`]) with its output sent over the link.

use super::encoder::{self, EncoderSettings, ThumbnailOutput};
use super::plan::PlannedRung;
use super::{remote, Fallback, Ladder, Ladders, Slot};
use crate::thumbnail::{OwnedPlanes, Thumbnails};
use bytes::Bytes;
use chrono::Utc;
use olive_core::ReplayId;
use olive_media_mux::flv::demux_video;
use olive_media_mux::flv_stream::{self, TagKind, TagReader};
use olive_store::usage::UsageMeter;
use olive_store::Meter;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Source tags queued for the encoder: about four seconds of 60 fps video. A fuller queue means
/// the encoder cannot keep up, and frames are skipped up to the next keyframe.
const INPUT_QUEUE: usize = 256;
/// The largest tag the encoder may send back.
const MAX_TAG: usize = 8 * 1024 * 1024;
/// How long the encoder has to connect to a rung's socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Checks that `ffmpeg` runs and encodes with libx264; `Err` says what is missing.
pub async fn probe_encoder(settings: &EncoderSettings) -> Result<(), String> {
    let run = tokio::process::Command::new(&settings.program)
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=30"])
        .args(["-frames:v", "2", "-c:v", "libx264", "-preset", &settings.preset, "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Err(_) => Err(format!("{} did not answer in 20 s", settings.program.display())),
        Ok(Err(e)) => Err(format!("{} could not be started ({e}); install ffmpeg", settings.program.display())),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("no message");
            Err(format!("{} cannot encode with libx264: {last}", settings.program.display()))
        }
    }
}

/// Measures how many ladders of `spec` this machine can encode at once: encodes four seconds of a
/// noisy 720p30 test picture (camera grain costs an encoder as much as a real scene) and divides
/// three quarters of the cores by the share of a core one ladder took. Returns the slots and the
/// cores one ladder takes.
pub async fn measure_slots(settings: &EncoderSettings, spec: &super::plan::LadderSpec) -> Result<(usize, f64), String> {
    const SECONDS: f64 = 4.0;
    let rungs = super::plan::plan(spec, 1280, 720, Some(30.0));
    if rungs.is_empty() {
        return Ok((0, 0.0));
    }
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.push(format!("testsrc2=size=1280x720:rate=30,noise=alls=8:allf=t,format=yuv420p,trim=duration={SECONDS}"));
    args.extend(["-filter_complex".to_owned(), encoder::filter_graph(&rungs, false)]);
    for (i, r) in rungs.iter().enumerate() {
        args.extend(encoder::rung_arguments(settings, i, r));
        args.extend(["-f", "null", "-"].iter().map(|s| (*s).to_owned()));
    }
    let before = children_cpu_seconds();
    let run = tokio::process::Command::new(&settings.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(120), run).await {
        Err(_) => return Err("the measurement took more than 120 s".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("ffmpeg failed").to_owned());
    }
    let per_ladder = ((children_cpu_seconds() - before) / SECONDS).max(0.01);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok((((cores * 0.75) / per_ladder).floor().max(1.0) as usize, per_ladder))
}

/// CPU seconds the children this process has waited for used.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

enum Input {
    /// The AVC sequence header's tag: sent first to every encoder run.
    SequenceHeader(Bytes),
    Frame {
        tag: Bytes,
        keyframe: bool,
    },
}

/// The ingest session's end of a running ladder.
pub(crate) struct Feed {
    ladder: Arc<Ladder>,
    input: mpsc::Sender<Input>,
    /// The encoder's queue was full: frames are skipped until the next keyframe.
    skipping: bool,
}

impl Feed {
    pub(crate) fn ladder(&self) -> &Arc<Ladder> {
        &self.ladder
    }

    /// The source's AVC sequence header (its FLV tag payload).
    pub(crate) fn sequence_header(&mut self, payload: &Bytes) {
        let tag = flv_stream::tag(TagKind::Video, 0, payload);
        // A reconfiguration must reach the encoder; waiting is not possible here, so a full
        // queue skips to the next keyframe, which follows a new sequence header.
        if self.input.try_send(Input::SequenceHeader(tag)).is_err() {
            self.skipping = true;
        }
    }

    /// A source video frame at decode time `ms` (stream milliseconds), its FLV tag payload as
    /// the broadcaster sent it.
    pub(crate) fn video(&mut self, ms: i64, cts_ms: i32, keyframe: bool, payload: &Bytes) {
        if keyframe {
            self.skipping = false;
        }
        let taken = !self.skipping && {
            let tag = flv_stream::tag(TagKind::Video, ms.clamp(0, i64::from(u32::MAX)) as u32, payload);
            match self.input.try_send(Input::Frame { tag, keyframe }) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.skipping = true;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        };
        self.ladder.source_fed(ms + i64::from(cts_ms), taken);
    }
}

/// Where a live's thumbnails go when its encoder makes them.
#[derive(Clone)]
pub(crate) struct ThumbnailSink {
    pub thumbnails: Arc<Thumbnails>,
    pub replay: Option<ReplayId>,
    pub output: ThumbnailOutput,
}

/// Where a ladder's encoder runs.
pub(crate) enum Placement {
    /// Here, in this slot.
    Here(Slot),
    /// On another node of the cluster, which links to this one ([`super::remote`]).
    Elsewhere,
}

/// Starts the encoder of `ladder` and returns the feed the ingest session writes to. A slot here
/// is held until the encoder stops.
pub(crate) fn start(
    ladders: Arc<Ladders>,
    ladder: Arc<Ladder>,
    placement: Placement,
    usage: Arc<UsageMeter>,
    thumbnails: Option<ThumbnailSink>,
) -> Feed {
    let (input, rx) = mpsc::channel(INPUT_QUEUE);
    let feed = Feed { ladder: ladder.clone(), input, skipping: false };
    tokio::spawn(supervise(ladders, ladder, rx, placement, usage, thumbnails));
    feed
}

static LADDER_RUNS: AtomicU64 = AtomicU64::new(0);

/// A private folder for one encoder's sockets.
fn run_dir(settings: &super::LadderSettings, channel: olive_core::ChannelId) -> std::path::PathBuf {
    let run = LADDER_RUNS.fetch_add(1, Ordering::Relaxed);
    settings.work_dir.join(format!("olive-ladder-{}-{channel}-{run}", std::process::id()))
}

async fn supervise(
    ladders: Arc<Ladders>,
    ladder: Arc<Ladder>,
    mut rx: mpsc::Receiver<Input>,
    placement: Placement,
    usage: Arc<UsageMeter>,
    thumbnails: Option<ThumbnailSink>,
) {
    let settings = ladders.settings().clone();
    let channel = ladder.channel();
    let dir = run_dir(&settings, channel);
    let plans: Vec<_> = ladder.rungs.iter().map(|r| r.plan).collect();
    let job = remote::EncoderJob::new(channel, &plans, thumbnails.as_ref().map(|t| t.output));
    let mut sequence_header: Option<Bytes> = None;
    loop {
        let output = LadderOutput::new(ladder.clone(), thumbnails.clone(), usage.clone());
        let ended = match &placement {
            Placement::Here(_) => {
                ladder.set_running(true);
                let thumbnails = thumbnails.as_ref().map(|t| t.output);
                let rungs = (channel, plans.as_slice(), thumbnails);
                run_here(&settings.encoder, rungs, &dir, &mut rx, &mut sequence_header, output).await
            }
            Placement::Elsewhere => run_elsewhere(&ladders, &job, &mut rx, &mut sequence_header, output).await,
        };
        match ended {
            Ok(()) => break,
            Err(why) => {
                if ladder.restarts() >= settings.restarts {
                    tracing::error!(channel_id = %channel, reason = %why, "the encoder keeps failing; the live plays as basic");
                    ladders.set_fallback(channel, Some(Fallback::EncoderFailed(why)));
                    ladder.end_stream();
                    break;
                }
                tracing::warn!(channel_id = %channel, reason = %why, "the encoder failed; restarting it at the next keyframe");
                ladder.set_running(false);
                ladder.restart_rungs();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    ladders.stop_placing(channel);
    ladder.set_running(false);
    ladder.set_stopped();
    let _ = tokio::fs::remove_dir_all(&dir).await;
    if let Placement::Here(slot) = placement {
        drop(slot); // given back only now
    }
}

/// Hands the source to one encoder run as FLV: the stream header, the sequence header, then
/// every frame from the next keyframe on. Ends when the source ends, or when the encoder stops
/// taking input (`to` closed).
async fn feed(rx: &mut mpsc::Receiver<Input>, sequence_header: &mut Option<Bytes>, to: mpsc::Sender<Bytes>) {
    if to.send(flv_stream::header(false)).await.is_err() {
        return;
    }
    if let Some(header) = sequence_header.as_ref() {
        if to.send(header.clone()).await.is_err() {
            return;
        }
    }
    // A restarted encoder begins at a keyframe.
    let mut waiting_for_keyframe = true;
    while let Some(input) = rx.recv().await {
        let sent = match input {
            Input::SequenceHeader(tag) => {
                *sequence_header = Some(tag.clone());
                to.send(tag).await
            }
            Input::Frame { tag, keyframe } => {
                waiting_for_keyframe &= !keyframe;
                if waiting_for_keyframe {
                    continue;
                }
                to.send(tag).await
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Source chunks queued between the feed and the encoder's standard input.
const STDIN_QUEUE: usize = 16;

/// One run of the encoder on this node, making the channel's rungs (and thumbnails, if asked).
async fn run_here(
    settings: &EncoderSettings,
    (channel, plans, thumbnails): (olive_core::ChannelId, &[PlannedRung], Option<ThumbnailOutput>),
    dir: &Path,
    rx: &mut mpsc::Receiver<Input>,
    sequence_header: &mut Option<Bytes>,
    output: LadderOutput,
) -> Result<(), String> {
    let (to, input) = mpsc::channel(STDIN_QUEUE);
    let run = run_encoder(settings, channel, plans, thumbnails, dir, input, output);
    tokio::pin!(run);
    tokio::select! {
        ended = &mut run => ended,
        () = feed(rx, sequence_header, to) => run.await,
    }
}

/// One run of the encoder on another node: waits for a node to link (announcing the ladder
/// meanwhile, and dropping the source's frames but not its sequence header), then feeds it the
/// source and hands what it sends to the ladder.
async fn run_elsewhere(
    ladders: &Ladders,
    job: &remote::EncoderJob,
    rx: &mut mpsc::Receiver<Input>,
    sequence_header: &mut Option<Bytes>,
    output: LadderOutput,
) -> Result<(), String> {
    let channel = job.channel;
    let mut linked = ladders.wait_for_link(job);
    let mut announce = tokio::time::interval(remote::ANNOUNCE_EVERY);
    let waiting_since = tokio::time::Instant::now();
    let link = loop {
        tokio::select! {
            link = &mut linked => match link {
                Ok(link) => break link,
                Err(_) => linked = ladders.wait_for_link(job),
            },
            input = rx.recv() => match input {
                None => return Ok(()),
                Some(Input::SequenceHeader(tag)) => *sequence_header = Some(tag),
                Some(Input::Frame { .. }) => {}
            },
            _ = announce.tick() => {
                if waiting_since.elapsed() >= remote::PLACEMENT_GRACE
                    && ladders.fallback(channel).is_none()
                {
                    tracing::info!(channel_id = %channel, "no node took the ladder yet; the live plays as basic");
                    ladders.set_fallback(channel, Some(Fallback::NoFreeNode));
                }
                ladders.announce(channel).await;
            }
        }
    };
    let ladder = output.ladder.clone();
    tracing::info!(channel_id = %channel, node = %link.node, "the ladder is encoded on another node");
    ladders.set_fallback(channel, None);
    ladder.set_encoder_node(Some(link.node.clone()));
    ladder.set_running(true);
    let remote::EncoderLink { source, mut messages, .. } = link;
    let received = async {
        loop {
            let message = match tokio::time::timeout(remote::LINK_SILENCE, messages.recv()).await {
                Err(_) => return Err("the encoding node went silent".to_owned()),
                Ok(None) => return Err("the link to the encoding node closed".to_owned()),
                Ok(Some(message)) => remote::EncoderMessage::decode(message)
                    .map_err(|e| format!("the encoding node sent a malformed message: {e}"))?,
            };
            match message {
                remote::EncoderMessage::Rung(index, bytes) => {
                    output.rung(usize::from(index), bytes).await;
                }
                remote::EncoderMessage::RungEnded(index) => output.rung_ended(usize::from(index)).await,
                remote::EncoderMessage::Picture(frame) => output.picture(frame).await,
                remote::EncoderMessage::Cpu(seconds) => output.cpu(seconds).await,
                remote::EncoderMessage::Done => return Ok(()),
                remote::EncoderMessage::Failed(why) => return Err(format!("on the encoding node: {why}")),
            }
        }
    };
    tokio::pin!(received);
    tokio::select! {
        ended = &mut received => ended,
        () = feed(rx, sequence_header, source) => received.await,
    }
}

/// Encodes a ladder for another node: runs `job` with the source arriving on `input` and sends
/// each rung, thumbnail and CPU report to `messages`, then how the run ended.
pub async fn encode_for_peer(
    ladders: &Ladders,
    job: &remote::EncoderJob,
    input: mpsc::Receiver<Bytes>,
    messages: mpsc::Sender<Bytes>,
) {
    let ended = async {
        let plans = job.plans()?;
        let thumbnails = job.thumbnail_output()?;
        let settings = ladders.settings();
        let dir = run_dir(settings, job.channel);
        let output = LinkOutput(messages.clone());
        let ended = run_encoder(&settings.encoder, job.channel, &plans, thumbnails, &dir, input, output).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        ended
    };
    let last = match ended.await {
        Ok(()) => remote::EncoderMessage::Done,
        Err(why) => remote::EncoderMessage::Failed(why),
    };
    let _ = messages.send(last.encode()).await;
}

/// What an encoder run sends back: each rung's FLV, thumbnail pictures, CPU reports.
pub(crate) trait EncoderOutput: Clone + Send + Sync + 'static {
    /// A piece of rung `index`'s FLV stream; `false` when no more of it is wanted.
    fn rung(&self, index: usize, bytes: Bytes) -> impl Future<Output = bool> + Send;
    /// Rung `index`'s stream ended.
    fn rung_ended(&self, index: usize) -> impl Future<Output = ()> + Send;
    /// A raw thumbnail picture.
    fn picture(&self, frame: Bytes) -> impl Future<Output = ()> + Send;
    /// CPU seconds the encoder used since the last report.
    fn cpu(&self, seconds: f64) -> impl Future<Output = ()> + Send;
}

/// An encoder's output going into this node's ladder (from a process here, or over a link).
#[derive(Clone)]
pub(crate) struct LadderOutput {
    ladder: Arc<Ladder>,
    /// Each rung's FLV reader; `None` once its stream was found malformed.
    readers: Arc<Vec<Mutex<Option<TagReader>>>>,
    thumbnails: Option<ThumbnailSink>,
    usage: Arc<UsageMeter>,
    /// CPU milliseconds not yet charged (whole ones are).
    unbilled_ms: Arc<Mutex<f64>>,
}

impl LadderOutput {
    fn new(ladder: Arc<Ladder>, thumbnails: Option<ThumbnailSink>, usage: Arc<UsageMeter>) -> Self {
        let readers = ladder.rungs.iter().map(|_| Mutex::new(Some(TagReader::new(MAX_TAG)))).collect();
        LadderOutput { ladder, readers: Arc::new(readers), thumbnails, usage, unbilled_ms: Arc::default() }
    }
}

impl EncoderOutput for LadderOutput {
    async fn rung(&self, index: usize, bytes: Bytes) -> bool {
        let Some(reader) = self.readers.get(index) else {
            tracing::warn!(channel_id = %self.ladder.channel(), rung = index, "the encoder sent a rung the ladder does not have");
            return false;
        };
        let mut reader = reader.lock().expect("rung reader poisoned");
        let Some(tags) = reader.as_mut() else { return false };
        tags.push(&bytes);
        loop {
            match tags.next_tag() {
                Ok(Some(tag)) if tag.kind == TagKind::Video => {
                    let size = tag.payload.len();
                    match demux_video(tag.timestamp, tag.payload) {
                        Ok(event) => self.ladder.rung_video(index, event, size),
                        Err(e) => {
                            tracing::warn!(channel_id = %self.ladder.channel(), error = %e, "the encoder sent a malformed frame")
                        }
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(e) => {
                    tracing::warn!(channel_id = %self.ladder.channel(), error = %e, "the encoder's output is not FLV");
                    *reader = None;
                    self.ladder.rung_finished(index);
                    return false;
                }
            }
        }
    }

    async fn rung_ended(&self, index: usize) {
        let Some(reader) = self.readers.get(index) else { return };
        if reader.lock().expect("rung reader poisoned").take().is_some() {
            self.ladder.rung_finished(index);
        }
    }

    async fn picture(&self, frame: Bytes) {
        let Some(sink) = &self.thumbnails else { return };
        let (width, height) = (sink.output.width as usize, sink.output.height as usize);
        if frame.len() != OwnedPlanes::frame_len(width, height) {
            tracing::warn!(channel_id = %self.ladder.channel(), bytes = frame.len(), "a thumbnail picture of the wrong size was dropped");
            return;
        }
        let picture = OwnedPlanes { data: frame, width, height };
        sink.thumbnails.offer_picture(self.ladder.channel(), sink.replay, picture);
    }

    async fn cpu(&self, seconds: f64) {
        let ladder = &self.ladder;
        let channel = ladder.channel();
        let label = channel.to_string();
        ladder.add_cpu(seconds);
        let whole = {
            let mut unbilled = self.unbilled_ms.lock().expect("cpu bill poisoned");
            *unbilled += seconds * 1000.0;
            let whole = unbilled.floor();
            *unbilled -= whole;
            whole
        };
        metrics::counter!("olive_transcode_cpu_milliseconds_total", "channel" => label.clone()).increment(whole as u64);
        for rung in ladder.health().rungs {
            let labels = [("channel", label.clone()), ("rung", rung.name)];
            metrics::gauge!("olive_ladder_encoder_lag_seconds", &labels).set(rung.encoder_lag_ms.max(0) as f64 / 1e3);
            metrics::gauge!("olive_ladder_rung_fps", &labels).set(rung.fps);
            metrics::gauge!("olive_ladder_dropped_parts", &labels).set(rung.dropped_parts as f64);
        }
        self.usage.add(Utc::now().date_naive(), Some(channel), Meter::CpuMs, whole as i64);
    }
}

/// An encoder's output going to the node whose ladder it is.
#[derive(Clone)]
struct LinkOutput(mpsc::Sender<Bytes>);

impl EncoderOutput for LinkOutput {
    async fn rung(&self, index: usize, bytes: Bytes) -> bool {
        // A checked job has at most `remote::MAX_RUNGS` rungs: every index fits.
        let Ok(index) = u8::try_from(index) else { return false };
        self.0.send(remote::EncoderMessage::Rung(index, bytes).encode()).await.is_ok()
    }

    async fn rung_ended(&self, index: usize) {
        if let Ok(index) = u8::try_from(index) {
            let _ = self.0.send(remote::EncoderMessage::RungEnded(index).encode()).await;
        }
    }

    async fn picture(&self, frame: Bytes) {
        let _ = self.0.send(remote::EncoderMessage::Picture(frame).encode()).await;
    }

    async fn cpu(&self, seconds: f64) {
        let _ = self.0.send(remote::EncoderMessage::Cpu(seconds).encode()).await;
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// How far the encoder stands back from the server for a core (`nice`): on a busy node ingest,
/// playback, chat and checkout go first, and it is the rungs that fall behind and skip parts.
pub const ENCODER_NICENESS: i32 = 10;

/// A command for `program` that runs at [`ENCODER_NICENESS`].
fn yielding(program: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    // SAFETY: between fork and exec the child only calls nice(2), which is async-signal-safe and
    // touches no memory; its failure (already as nice) is no reason not to run.
    unsafe {
        command.pre_exec(|| {
            libc::nice(ENCODER_NICENESS);
            Ok(())
        });
    }
    command
}

/// One run of the encoder process: `input` is the source as FLV (its end is the source's end),
/// and every rung, picture and CPU report goes to `output`. `Ok` when the source ended and the
/// encoder finished its output, `Err` with what went wrong otherwise.
async fn run_encoder(
    settings: &EncoderSettings,
    channel: olive_core::ChannelId,
    plans: &[PlannedRung],
    thumbnails: Option<ThumbnailOutput>,
    dir: &Path,
    mut input: mpsc::Receiver<Bytes>,
    output: impl EncoderOutput,
) -> Result<(), String> {
    private_dir(dir).map_err(|e| format!("could not make {}: {e}", dir.display()))?;
    let mut readers = JoinSet::new();
    for (index, plan) in plans.iter().enumerate() {
        let path = encoder::socket_path(dir, plan);
        let listener = UnixListener::bind(&path).map_err(|e| format!("could not listen on {}: {e}", path.display()))?;
        readers.spawn(read_rung(output.clone(), channel, index, listener));
    }
    if let Some(size) = thumbnails {
        let path = encoder::thumbnail_socket(dir);
        let listener = UnixListener::bind(&path).map_err(|e| format!("could not listen on {}: {e}", path.display()))?;
        readers.spawn(read_thumbnails(output.clone(), size, listener));
    }
    let mut child = yielding(&settings.program)
        .args(encoder::arguments(settings, plans, thumbnails, dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", settings.program.display()))?;
    let last_error = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        let last_error = last_error.clone();
        tokio::spawn(async move {
            // A damaged stream makes the decoder complain on every frame: one line in ten
            // seconds is a warning, the rest are for debugging.
            let mut lines = BufReader::new(stderr).lines();
            let mut last_warning: Option<std::time::Instant> = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    last_warning = Some(std::time::Instant::now());
                    tracing::warn!(channel_id = %channel, encoder = %line, "encoder says");
                } else {
                    tracing::debug!(channel_id = %channel, encoder = %line, "encoder says");
                }
                *last_error.lock().expect("encoder message poisoned") = line;
            }
        });
    }
    let cpu = child.id().map(|pid| tokio::spawn(meter_cpu(pid, output.clone())));
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let fed = async {
        while let Some(chunk) = input.recv().await {
            stdin.write_all(&chunk).await?;
        }
        stdin.shutdown().await?;
        drop(stdin);
        Ok::<(), std::io::Error>(())
    };
    let outcome = tokio::select! {
        fed = fed => match fed {
            Ok(()) => {
                // The source ended: the encoder flushes its rungs and exits.
                match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                    Ok(Ok(status)) if status.success() => Ok(()),
                    Ok(Ok(status)) => Err(format!("it exited with {status} at the end")),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => {
                        let _ = child.kill().await;
                        Ok(())
                    }
                }
            }
            Err(e) => Err(format!("it stopped reading its input ({e})")),
        },
        status = child.wait() => Err(match status {
            Ok(s) => format!("it exited with {s}"),
            Err(e) => e.to_string(),
        }),
    };
    if outcome.is_err() {
        let _ = child.kill().await;
        readers.abort_all();
    }
    while readers.join_next().await.is_some() {}
    if let Some(cpu) = cpu {
        cpu.abort();
    }
    outcome.map_err(|why| {
        let said = last_error.lock().expect("encoder message poisoned").clone();
        if said.is_empty() {
            why
        } else {
            format!("{why}: {said}")
        }
    })
}

/// Reads rung `index`'s FLV from the encoder until it ends.
async fn read_rung(output: impl EncoderOutput, channel: olive_core::ChannelId, index: usize, listener: UnixListener) {
    let accepted = tokio::time::timeout(CONNECT_TIMEOUT, listener.accept()).await;
    let Ok(Ok((mut stream, _))) = accepted else {
        tracing::warn!(channel_id = %channel, rung = index, "the encoder never sent this rung");
        return;
    };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !output.rung(index, Bytes::copy_from_slice(&buffer[..n])).await {
                    return;
                }
            }
        }
    }
    output.rung_ended(index).await;
}

/// Reads the encoder's raw thumbnail pictures (fixed-size `yuv420p` frames) until it ends.
async fn read_thumbnails(output: impl EncoderOutput, size: ThumbnailOutput, listener: UnixListener) {
    let Ok(Ok((mut stream, _))) = tokio::time::timeout(CONNECT_TIMEOUT, listener.accept()).await else { return };
    let mut frame = vec![0u8; OwnedPlanes::frame_len(size.width as usize, size.height as usize)];
    while stream.read_exact(&mut frame).await.is_ok() {
        output.picture(Bytes::copy_from_slice(&frame)).await;
    }
}

/// CPU seconds (user and system) process `pid` has used, from `/proc`.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) / ticks)
}

/// Reports the encoder's CPU every two seconds.
async fn meter_cpu(pid: u32, output: impl EncoderOutput) {
    let mut charged = 0.0f64;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let Some(total) = process_cpu_seconds(pid) else { return };
        let delta = (total - charged).max(0.0);
        charged = total;
        output.cpu(delta).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder runs behind the server for a core: its niceness is the server's plus ten.
    #[tokio::test]
    async fn the_encoder_yields_to_the_server() {
        let mut child = yielding(Path::new("sleep")).arg("5").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        let niceness =
            |stat: &str| -> i32 { stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(16).unwrap().parse().unwrap() };
        let ours = niceness(&std::fs::read_to_string("/proc/self/stat").unwrap());
        let its = niceness(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap());
        assert_eq!(its, (ours + ENCODER_NICENESS).min(19));
        child.kill().await.unwrap();
    }
}
