//! Thumbnails: a JPEG of a live channel every few seconds, made in the server without ffmpeg.
//!
//! Only keyframes are ever decoded, and only one per interval: an IDR picture decodes on its own,
//! so each thumbnail is one keyframe fed with its SPS/PPS to a fresh OpenH264 decoder (built from
//! the source the `openh264` crate bundles); its planes are scaled to [`WIDTH`] pixels wide with a
//! SIMD resizer and written as JPEG by libjpeg-turbo straight from the planes ([`render_planes`]), never
//! through RGB. The work runs on the blocking pool, at most one thumbnail per channel at a time
//! and as many at once as the machine has cores; a keyframe that finds no free slot is skipped and
//! the next one is tried. The JPEG is stored as `thumbnails/{channel}/{unix_ms}.jpg`, kept in
//! memory as the channel's newest, and named on the recording as its poster.
//!
//! Each thumbnail's perceptual hash (dHash) is compared with the last one labelled on the same recording;
//! only a changed picture is queued for labelling (job [`LABEL_JOB`], run where the classifier
//! is), so a host talking in front of the same shelf costs one label, not one every few seconds.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, ReplayId};
use olive_jobs::JobQueue;
use olive_media_mux::VideoConfig;
use olive_objects::Objects;
use olive_store::usage::UsageMeter;
use olive_store::{Meter, Store};
use olive_vision::hash::{ChangeGate, Decision, PictureHash};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::Semaphore;

/// Thumbnail width in pixels; the height keeps the picture's aspect ratio.
pub const WIDTH: u32 = 640;
/// JPEG quality (0–100).
pub const QUALITY: u8 = 80;
/// Pictures larger than this are not decoded (8K UHD): a forged SPS cannot make us allocate more.
pub const MAX_PIXELS: u64 = 7680 * 4320;

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("the stream has no SPS/PPS yet")]
    NoConfig,
    #[error("the picture is {0}x{1}, more than a thumbnail is made from")]
    TooLarge(u32, u32),
    #[error("malformed access unit: {0}")]
    Malformed(&'static str),
    #[error("the decoder refused the keyframe: {0}")]
    Decode(String),
    #[error("the keyframe decoded to no picture")]
    NoPicture,
    #[error("jpeg encoding failed: {0}")]
    Encode(String),
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Turns a keyframe (AVCC: NAL units with big-endian length prefixes of `nal_length_size` bytes)
/// and its parameter sets into one Annex B access unit.
pub fn annex_b(config: &VideoConfig, frame: &[u8]) -> Result<Vec<u8>, ThumbnailError> {
    if config.sps.is_empty() || config.pps.is_empty() {
        return Err(ThumbnailError::NoConfig);
    }
    let size = usize::from(config.nal_length_size);
    if !(1..=4).contains(&size) {
        return Err(ThumbnailError::Malformed("NAL length size outside 1 to 4"));
    }
    let mut out = Vec::with_capacity(frame.len() + 128);
    for ps in config.sps.iter().chain(&config.pps) {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(ps);
    }
    let mut rest = frame;
    while !rest.is_empty() {
        if rest.len() < size {
            return Err(ThumbnailError::Malformed("truncated NAL length"));
        }
        let len = rest[..size].iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        rest = &rest[size..];
        if len > rest.len() {
            return Err(ThumbnailError::Malformed("NAL unit longer than the frame"));
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
    }
    Ok(out)
}

/// Job kind: label one thumbnail.
pub const LABEL_JOB: &str = "thumbnail.label";

/// What a [`LABEL_JOB`] is asked to label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRequest {
    pub channel_id: ChannelId,
    pub replay_id: ReplayId,
    pub thumbnail_key: String,
    pub taken_at: DateTime<Utc>,
}

/// A thumbnail as made: the JPEG and the picture's perceptual hash.
#[derive(Debug)]
pub struct Rendered {
    pub jpeg: Vec<u8>,
    pub hash: PictureHash,
}

/// Decodes one keyframe and returns the thumbnail.
pub fn render(config: &VideoConfig, frame: &[u8]) -> Result<Rendered, ThumbnailError> {
    use openh264::formats::YUVSource;
    if u64::from(config.width) * u64::from(config.height) > MAX_PIXELS {
        return Err(ThumbnailError::TooLarge(config.width, config.height));
    }
    let access_unit = annex_b(config, frame)?;
    let mut decoder = openh264::decoder::Decoder::new().map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    let decoded = decoder.decode(&access_unit).map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    let flushed;
    let yuv = match decoded {
        Some(yuv) => yuv,
        None => {
            flushed = decoder.flush_remaining().map_err(|e| ThumbnailError::Decode(e.to_string()))?;
            flushed.into_iter().last().ok_or(ThumbnailError::NoPicture)?
        }
    };
    let (width, height) = yuv.dimensions();
    let (y, u, v) = yuv.strides();
    render_planes(&Planes { y: yuv.y(), u: yuv.u(), v: yuv.v(), width, height, strides: (y, u, v) })
}

/// A decoded picture in YUV 4:2:0: three planes of 8-bit samples, rows `strides` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub strides: (usize, usize, usize),
}

/// A 4:2:0 picture in one buffer, planes packed one after the other (as ffmpeg's `rawvideo`
/// `yuv420p` writes them).
#[derive(Debug, Clone)]
pub struct OwnedPlanes {
    pub data: Bytes,
    pub width: usize,
    pub height: usize,
}

impl OwnedPlanes {
    /// The bytes one picture of this size takes.
    pub fn frame_len(width: usize, height: usize) -> usize {
        width * height + 2 * width.div_ceil(2) * height.div_ceil(2)
    }

    pub fn planes(&self) -> Planes<'_> {
        let (w, h) = (self.width, self.height);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let luma = w * h;
        Planes {
            y: &self.data[..luma],
            u: &self.data[luma..luma + cw * ch],
            v: &self.data[luma + cw * ch..luma + 2 * cw * ch],
            width: w,
            height: h,
            strides: (w, cw, cw),
        }
    }
}

/// The thumbnail's size for a `width`x`height` picture: [`WIDTH`] wide at most, never scaled up,
/// the picture's shape kept.
pub fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    if width <= WIDTH {
        return (width, height);
    }
    let h = ((u64::from(height) * u64::from(WIDTH) + u64::from(width) / 2) / u64::from(width)).max(1) as u32;
    (WIDTH, h)
}

/// Scales each plane of a picture to the thumbnail's size with `fast_image_resize` (SIMD, on 8-bit
/// samples, no conversion to RGB), stretches it to full range and writes it as a 4:2:0 JPEG with
/// libjpeg-turbo straight from the planes (SIMD DCT and entropy coding, no colour conversion).
pub fn render_planes(picture: &Planes<'_>) -> Result<Rendered, ThumbnailError> {
    let (w, h) = (picture.width, picture.height);
    if w == 0 || h == 0 || (w as u64) * (h as u64) > MAX_PIXELS || w > usize::from(u16::MAX) {
        return Err(ThumbnailError::NoPicture);
    }
    let (tw, th) = thumbnail_size(w as u32, h as u32);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (tcw, tch) = (tw.div_ceil(2), th.div_ceil(2));
    let mut resizer = fast_image_resize::Resizer::new();
    let mut y = scale_plane(&mut resizer, picture.y, picture.strides.0, (w, h), (tw, th))?;
    let mut u = scale_plane(&mut resizer, picture.u, picture.strides.1, (cw, ch), (tcw, tch))?;
    let mut v = scale_plane(&mut resizer, picture.v, picture.strides.2, (cw, ch), (tcw, tch))?;
    // The perceptual hash looks at a 9x8 grey picture: made here, from the luma already scaled.
    let small = scale_plane(&mut resizer, &y, tw as usize, (tw as usize, th as usize), (9, 8))?;
    let grey = image::GrayImage::from_raw(9, 8, small).ok_or(ThumbnailError::NoPicture)?;
    let hash = PictureHash::of(&image::DynamicImage::ImageLuma8(grey));
    let range = &FULL_RANGE;
    y.iter_mut().for_each(|s| *s = range.luma[usize::from(*s)]);
    u.iter_mut().chain(v.iter_mut()).for_each(|s| *s = range.chroma[usize::from(*s)]);
    let jpeg = encode_jpeg(&y, &u, &v, tw as usize, th as usize)?;
    Ok(Rendered { jpeg, hash })
}

/// A 4:2:0 JPEG of packed full-range planes, by libjpeg-turbo's code in MozJPEG (`mozjpeg`, built
/// by `cc` from the source the crate bundles, with nasm's SIMD assembly where nasm is installed) set
/// to libjpeg-turbo's own fast defaults: baseline, standard Huffman tables, no trellis.
fn encode_jpeg(y: &[u8], u: &[u8], v: &[u8], width: usize, height: usize) -> Result<Vec<u8>, ThumbnailError> {
    let chroma = (width.div_ceil(2), height.div_ceil(2));
    if width == 0 || height == 0 || y.len() != width * height || u.len() != chroma.0 * chroma.1 || v.len() != u.len() {
        return Err(ThumbnailError::Malformed("planes of the wrong size for their picture"));
    }
    // libjpeg reports an error by calling back, and the crate turns that into a panic: caught here,
    // so a bad picture fails its thumbnail, not the blocking thread.
    std::panic::catch_unwind(|| {
        let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_YCbCr);
        compress.set_fastest_defaults();
        compress.set_size(width, height);
        compress.set_quality(f32::from(QUALITY));
        compress.set_raw_data_in(true);
        compress.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        let mut started = compress.start_compress(Vec::with_capacity(width * height / 4)).ok()?;
        // Raw data is read in whole blocks: each plane is padded to them.
        let padded: Vec<Vec<u8>> = [(y, (width, height)), (u, chroma), (v, chroma)]
            .iter()
            .zip(started.components())
            .map(|((plane, (w, h)), component)| {
                use mozjpeg::CompInfoExt;
                padded_plane(plane, (*w, *h), (component.row_stride(), component.col_stride()))
            })
            .collect();
        let planes: Vec<&[u8]> = padded.iter().map(Vec::as_slice).collect();
        started.write_raw_data(&planes).then_some(())?;
        started.finish().ok()
    })
    .ok()
    .flatten()
    .ok_or_else(|| ThumbnailError::Encode("the JPEG encoder refused the picture".into()))
}

/// A packed plane of `size` copied into a `padded` one, its last column and row repeated into
/// the padding.
fn padded_plane(plane: &[u8], (width, height): (usize, usize), (stride, rows): (usize, usize)) -> Vec<u8> {
    let mut padded = Vec::with_capacity(stride * rows);
    for row in plane.chunks_exact(width).take(height) {
        padded.extend_from_slice(row);
        padded.resize(padded.len() + stride.saturating_sub(width), row[width - 1]);
    }
    while padded.len() < stride * rows {
        padded.extend_from_within(padded.len() - stride..);
    }
    padded
}

/// A plane of `width`x`height` samples whose rows are `stride` apart, rows packed together
/// (borrowed when they already are); `None` if the samples do not cover the picture.
pub fn packed_plane(samples: &[u8], stride: usize, width: usize, height: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
    if height == 0 || stride < width || samples.len() < stride * (height - 1) + width {
        return None;
    }
    Some(if stride == width {
        std::borrow::Cow::Borrowed(&samples[..width * height])
    } else {
        // Row by row, each a memcpy: decoders pad their rows, and this runs once per plane.
        let mut packed = Vec::with_capacity(width * height);
        for row in samples.chunks(stride).take(height) {
            packed.extend_from_slice(&row[..width]);
        }
        std::borrow::Cow::Owned(packed)
    })
}

/// One plane (`size` samples, rows `stride` apart) scaled to `to`. A decoder's padded rows are
/// read where they are (the picture is a crop of the plane), not copied together first.
fn scale_plane(
    resizer: &mut fast_image_resize::Resizer,
    samples: &[u8],
    stride: usize,
    size: (usize, usize),
    to: (u32, u32),
) -> Result<Vec<u8>, ThumbnailError> {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
    let (w, h) = size;
    let too_short = || ThumbnailError::Malformed("a plane shorter than its picture");
    if (w as u32, h as u32) == to {
        return Ok(packed_plane(samples, stride, w, h).ok_or_else(too_short)?.into_owned());
    }
    // Down to half the size (720p to 360p, the usual case) bilinear interpolation averages each
    // 2x2 block, for a fraction of a convolution's cost; further down it would skip samples, so a
    // convolution takes every one into account (1080p, and the perceptual hash's 9x8).
    let halving = to.0 as usize * 2 >= w && to.1 as usize * 2 >= h;
    let filter = FilterType::Bilinear;
    let algorithm = if halving { ResizeAlg::Interpolation(filter) } else { ResizeAlg::Convolution(filter) };
    let options = ResizeOptions::new().resize_alg(algorithm);
    let mut scaled = Image::new(to.0, to.1, PixelType::U8);
    let resized = match samples.get(..stride.saturating_mul(h)) {
        Some(whole_rows) if stride >= w => {
            let plane = ImageRef::new(stride as u32, h as u32, whole_rows, PixelType::U8)
                .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
            resizer.resize(&plane, &mut scaled, &options.crop(0.0, 0.0, w as f64, h as f64))
        }
        // The last row stops at the picture's edge: the rows are packed together first.
        _ => {
            let packed = packed_plane(samples, stride, w, h).ok_or_else(too_short)?;
            let plane = ImageRef::new(w as u32, h as u32, &packed, PixelType::U8)
                .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
            resizer.resize(&plane, &mut scaled, &options)
        }
    };
    resized.map_err(|e| ThumbnailError::Encode(e.to_string()))?;
    Ok(scaled.into_vec())
}

/// H.264 from cameras and OBS is limited range (luma 16–235, chroma 16–240); JPEG's YCbCr is full
/// range. These tables stretch one into the other, so a thumbnail keeps the picture's contrast.
struct FullRange {
    luma: [u8; 256],
    chroma: [u8; 256],
}

const fn full_range() -> FullRange {
    let (mut luma, mut chroma) = ([0u8; 256], [0u8; 256]);
    let mut i = 0;
    while i < 256 {
        let y = ((i as i32 - 16) * 255 * 2 + 219) / (219 * 2);
        luma[i] = if y < 0 {
            0
        } else if y > 255 {
            255
        } else {
            y as u8
        };
        let c = ((i as i32 - 128) * 255 * 2 + if i >= 128 { 224 } else { -224 }) / (224 * 2) + 128;
        chroma[i] = if c < 0 {
            0
        } else if c > 255 {
            255
        } else {
            c as u8
        };
        i += 1;
    }
    FullRange { luma, chroma }
}

static FULL_RANGE: FullRange = full_range();

/// CPU time this thread has used: what a thumbnail (or a label) costs, apart from waiting for a core.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer; CLOCK_THREAD_CPUTIME_ID
    // exists on every Linux we run on, and on failure the zeroed value is returned.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// A channel's newest thumbnail.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub jpeg: Bytes,
    pub key: String,
    pub taken_at: DateTime<Utc>,
}

/// Makes, stores and remembers thumbnails.
pub struct Thumbnails {
    objects: Objects,
    store: Arc<dyn Store>,
    slots: Arc<Semaphore>,
    latest: RwLock<HashMap<ChannelId, Thumbnail>>,
    /// Where labelling jobs go; `None` when labelling is off (no model).
    labels: Option<JobQueue>,
    /// Per channel: the recording being labelled and its gate.
    gates: std::sync::Mutex<HashMap<ChannelId, (ReplayId, ChangeGate)>>,
    /// Where each thumbnail's CPU time and stored bytes are counted.
    usage: Arc<UsageMeter>,
}

/// What one publishing session keeps to pace its thumbnails.
#[derive(Debug)]
pub struct Pacer {
    interval_ms: i64,
    next_ms: Option<i64>,
    busy: Arc<AtomicBool>,
}

impl Pacer {
    pub fn new(interval_s: i32) -> Self {
        Pacer {
            interval_ms: i64::from(interval_s.max(1)) * 1000,
            next_ms: None,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Milliseconds between thumbnails.
    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    /// Whether the keyframe at stream time `dts_ms` should become a thumbnail.
    fn due(&self, dts_ms: i64) -> bool {
        self.next_ms.is_none_or(|next| dts_ms >= next) && !self.busy.load(Ordering::Acquire)
    }

    /// A thumbnail is being made from the keyframe at `dts_ms`. The next is due on a fixed grid of
    /// intervals, so keyframes that do not fall on it still average one thumbnail per interval
    /// (with a 2 s GOP and a 5 s interval: 6 s, 4 s, 6 s, …), unless the stream fell behind it.
    fn taken(&mut self, dts_ms: i64) {
        self.next_ms = Some(match self.next_ms {
            Some(next) if dts_ms < next + self.interval_ms => next + self.interval_ms,
            _ => dts_ms + self.interval_ms,
        });
        self.busy.store(true, Ordering::Release);
    }
}

impl Thumbnails {
    pub fn new(objects: Objects, store: Arc<dyn Store>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Thumbnails {
            objects,
            store,
            slots: Arc::new(Semaphore::new(cores)),
            latest: RwLock::new(HashMap::new()),
            labels: None,
            gates: std::sync::Mutex::new(HashMap::new()),
            usage: Arc::default(),
        }
    }

    /// Counts each thumbnail's CPU time and stored bytes in `usage` (the media's meter).
    pub fn metered(mut self, usage: Arc<UsageMeter>) -> Self {
        self.usage = usage;
        self
    }

    /// Queues changed pictures for labelling (when a classifier is there to run the jobs).
    pub fn with_labelling(mut self, on: bool) -> Self {
        self.labels = on.then(|| JobQueue::new(self.store.clone()));
        self
    }

    /// The live's pictures are done with (it ended): its newest is no longer shown as its live's.
    pub fn forget(&self, channel: ChannelId) {
        self.latest.write().expect("thumbnails poisoned").remove(&channel);
        self.gates.lock().expect("gates poisoned").remove(&channel);
    }

    pub fn latest(&self, channel: ChannelId) -> Option<Thumbnail> {
        self.latest.read().expect("thumbnails poisoned").get(&channel).cloned()
    }

    /// Offers a keyframe; takes a thumbnail from it if one is due and a slot is free. Never waits.
    pub fn offer(
        self: &Arc<Self>,
        pacer: &mut Pacer,
        channel: ChannelId,
        replay: Option<ReplayId>,
        config: &Arc<VideoConfig>,
        dts_ms: i64,
        frame: Bytes,
    ) {
        if !pacer.due(dts_ms) {
            return;
        }
        // Every core busy with other channels' thumbnails: try again at the next keyframe.
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            metrics::counter!("olive_thumbnails_total", "result" => "deferred").increment(1);
            return;
        };
        pacer.taken(dts_ms);
        let (this, busy, config) = (self.clone(), pacer.busy.clone(), config.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let made = tokio::task::spawn_blocking(move || {
                let cpu = thread_cpu_time();
                let jpeg = render(&config, &frame);
                (jpeg, thread_cpu_time().saturating_sub(cpu))
            })
            .await;
            drop(slot);
            if matches!(made, Ok((Ok(_), _))) {
                metrics::histogram!("olive_thumbnail_seconds").record(started.elapsed().as_secs_f64());
            }
            this.made(channel, replay, made, "this keyframe").await;
            busy.store(false, Ordering::Release);
        });
    }

    /// A picture the ladder's encoder already decoded and scaled (a `standard` live's
    /// thumbnails cost no decode of their own): JPEG-encoded on the blocking pool and kept.
    pub fn offer_picture(self: &Arc<Self>, channel: ChannelId, replay: Option<ReplayId>, picture: OwnedPlanes) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            metrics::counter!("olive_thumbnails_total", "result" => "deferred").increment(1);
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let made = tokio::task::spawn_blocking(move || {
                let cpu = thread_cpu_time();
                let rendered = render_planes(&picture.planes());
                (rendered, thread_cpu_time().saturating_sub(cpu))
            })
            .await;
            drop(slot);
            this.made(channel, replay, made, "the encoder's picture").await;
        });
    }

    /// A thumbnail was made (or not) from `source`: its CPU is charged and it is kept.
    async fn made(
        &self,
        channel: ChannelId,
        replay: Option<ReplayId>,
        made: Result<(Result<Rendered, ThumbnailError>, std::time::Duration), tokio::task::JoinError>,
        source: &'static str,
    ) {
        match made {
            Ok((Ok(rendered), cpu)) => {
                metrics::histogram!("olive_thumbnail_cpu_seconds").record(cpu.as_secs_f64());
                let ms = i64::try_from(cpu.as_millis()).unwrap_or(i64::MAX);
                self.usage.add(Utc::now().date_naive(), Some(channel), Meter::CpuMs, ms);
                self.keep(channel, replay, Bytes::from(rendered.jpeg), rendered.hash).await;
            }
            Ok((Err(e), _)) => {
                metrics::counter!("olive_thumbnails_total", "result" => "failed").increment(1);
                tracing::warn!(channel_id = %channel, error = %e, source, "no thumbnail");
            }
            Err(e) => tracing::error!(channel_id = %channel, error = %e, "thumbnail task failed"),
        }
    }

    async fn keep(&self, channel: ChannelId, replay: Option<ReplayId>, jpeg: Bytes, hash: PictureHash) {
        let taken_at = Utc::now();
        let key = olive_commerce::replays::thumbnail_key(channel, taken_at);
        if let Err(e) = self.objects.put(&key, jpeg.clone()).await {
            metrics::counter!("olive_thumbnails_total", "result" => "failed").increment(1);
            tracing::warn!(channel_id = %channel, error = %e, "could not store a thumbnail");
            return;
        }
        metrics::counter!("olive_thumbnails_total", "result" => "stored").increment(1);
        let size = i64::try_from(jpeg.len()).unwrap_or(i64::MAX);
        self.usage.add(taken_at.date_naive(), Some(channel), Meter::StoredBytes, size);
        if let Some(replay) = replay {
            if let Err(e) = self.store.set_replay_thumbnail(replay, &key).await {
                tracing::warn!(replay_id = %replay, error = %e, "could not name the replay's thumbnail");
            }
        }
        self.latest
            .write()
            .expect("thumbnails poisoned")
            .insert(channel, Thumbnail { jpeg, key: key.clone(), taken_at });
        if let (Some(replay), Some(jobs)) = (replay, &self.labels) {
            if self.changed(channel, replay, hash) {
                let request =
                    LabelRequest { channel_id: channel, replay_id: replay, thumbnail_key: key.clone(), taken_at };
                if let Err(e) = jobs.enqueue(LABEL_JOB, &request, Some(format!("{LABEL_JOB}/{key}")), 5, taken_at).await
                {
                    tracing::warn!(channel_id = %channel, error = %e, "could not queue a thumbnail for labelling");
                }
            }
        }
    }

    /// Whether the picture differs from the last one labelled on this recording (the first
    /// picture of a recording always does).
    fn changed(&self, channel: ChannelId, replay: ReplayId, hash: PictureHash) -> bool {
        let mut gates = self.gates.lock().expect("gates poisoned");
        let entry = gates.entry(channel).or_insert_with(|| (replay, ChangeGate::default()));
        if entry.0 != replay {
            *entry = (replay, ChangeGate::default());
        }
        match entry.1.offer(hash) {
            Decision::Label { .. } => true,
            Decision::Unchanged { .. } => {
                metrics::counter!("olive_thumbnails_total", "result" => "unchanged").increment(1);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(nal_length_size: u8) -> VideoConfig {
        VideoConfig {
            profile: 100,
            compatibility: 0,
            level: 31,
            nal_length_size,
            sps: vec![Bytes::from_static(&[0x67, 1, 2])],
            pps: vec![Bytes::from_static(&[0x68, 3])],
            width: 1280,
            height: 720,
            frame_rate: None,
        }
    }

    #[test]
    fn limited_range_is_stretched_to_jpegs_full_range() {
        let r = &FULL_RANGE;
        assert_eq!((r.luma[0], r.luma[16], r.luma[126], r.luma[235], r.luma[255]), (0, 0, 128, 255, 255));
        assert_eq!((r.chroma[16], r.chroma[128], r.chroma[240], r.chroma[0], r.chroma[255]), (0, 128, 255, 0, 255));
        assert!(r.luma.windows(2).all(|w| w[0] <= w[1]) && r.chroma.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn avcc_becomes_annex_b_with_parameter_sets_first() {
        let frame = [0, 0, 0, 2, 0x65, 9, 0, 0, 0, 1, 0x06];
        let au = annex_b(&config(4), &frame).unwrap();
        assert_eq!(au, [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 0, 0, 0, 1, 0x06]);
        let short = annex_b(&config(2), &[0, 1, 0x65]).unwrap();
        assert!(short.ends_with(&[0, 0, 0, 1, 0x65]));
    }

    #[test]
    fn hostile_frames_are_refused_not_read_past() {
        for frame in [&[0, 0, 0][..], &[0, 0, 0, 9, 0x65], &[0xff, 0xff, 0xff, 0xff, 1]] {
            assert!(matches!(annex_b(&config(4), frame), Err(ThumbnailError::Malformed(_))), "{frame:?}");
        }
        assert!(matches!(annex_b(&config(0), &[]), Err(ThumbnailError::Malformed(_))));
        let mut bare = config(4);
        bare.pps.clear();
        assert!(matches!(annex_b(&bare, &[]), Err(ThumbnailError::NoConfig)));
        let mut huge = config(4);
        (huge.width, huge.height) = (16384, 16384);
        assert!(matches!(render(&huge, &[]), Err(ThumbnailError::TooLarge(..))));
        // Garbage that parses as NAL units: the decoder refuses it or finds no picture.
        let garbage = [0, 0, 0, 4, 0x65, 0xde, 0xad, 0xbe];
        assert!(render(&config(4), &garbage).is_err());
    }

    /// A solid-colour keyframe as an encoder sends it over RTMP: parameter sets in the config,
    /// the picture's NAL units with 4-byte lengths.
    fn encoded_keyframe(width: usize, height: usize, rgb: [u8; 3]) -> (VideoConfig, Vec<u8>) {
        encoded_picture(width, height, |_, _| rgb)
    }

    fn encoded_picture(width: usize, height: usize, paint: impl Fn(usize, usize) -> [u8; 3]) -> (VideoConfig, Vec<u8>) {
        use openh264::formats::{RgbSliceU8, YUVBuffer};
        let pixels: Vec<u8> = (0..width * height).flat_map(|i| paint(i % width, i / width)).collect();
        let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(&pixels, (width, height)));
        let mut encoder = openh264::encoder::Encoder::new().unwrap();
        let stream = encoder.encode(&yuv).unwrap().to_vec();
        let mut config = config(4);
        (config.sps, config.pps, config.width, config.height) = (vec![], vec![], width as u32, height as u32);
        let mut frame = Vec::new();
        for unit in openh264::nal_units(&stream) {
            let start = unit.iter().position(|b| *b == 1).unwrap() + 1;
            let nal = &unit[start..];
            match nal[0] & 0x1f {
                7 => config.sps.push(Bytes::copy_from_slice(nal)),
                8 => config.pps.push(Bytes::copy_from_slice(nal)),
                _ => {
                    frame.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    frame.extend_from_slice(nal);
                }
            }
        }
        (config, frame)
    }

    #[test]
    fn a_keyframe_becomes_a_640_wide_jpeg_of_the_same_colour() {
        let colour = [200u8, 60, 90];
        let (config, frame) = encoded_keyframe(1280, 720, colour);
        let jpeg = render(&config, &frame).unwrap().jpeg;
        let picture = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap().to_rgb8();
        assert_eq!(picture.dimensions(), (640, 360));
        let n = f64::from(640 * 360);
        for (channel, want) in colour.iter().enumerate() {
            let mean = picture.pixels().map(|p| f64::from(p[channel])).sum::<f64>() / n;
            assert!((mean - f64::from(*want)).abs() < 12.0, "channel {channel}: mean {mean}, sent {want}");
        }
        // Small pictures are not scaled up.
        let (config, frame) = encoded_keyframe(320, 240, colour);
        let small = image::load_from_memory(&render(&config, &frame).unwrap().jpeg).unwrap();
        assert_eq!((small.width(), small.height()), (320, 240));
    }

    #[test]
    fn the_same_scene_hashes_alike_and_another_scene_does_not() {
        use olive_vision::hash::SAME_PICTURE_BITS;
        let shelf =
            |x: usize, y: usize| if (x / 160 + y / 180).is_multiple_of(2) { [230, 200, 180] } else { [40, 30, 90] };
        let (config, frame) = encoded_picture(1280, 720, shelf);
        let first = render(&config, &frame).unwrap().hash;
        // The same scene a little brighter (the light changed): still the same picture.
        let (config, frame) = encoded_picture(1280, 720, |x, y| shelf(x, y).map(|c| c.saturating_add(12)));
        let brighter = render(&config, &frame).unwrap().hash;
        assert!(first.distance(brighter) <= SAME_PICTURE_BITS, "{} bits", first.distance(brighter));
        // A product held up in the middle: a new picture.
        let (config, frame) = encoded_picture(1280, 720, |x, y| {
            if (400..880).contains(&x) && (100..620).contains(&y) {
                [250, 20, 60]
            } else {
                shelf(x, y)
            }
        });
        let held = render(&config, &frame).unwrap().hash;
        assert!(first.distance(held) > SAME_PICTURE_BITS, "only {} bits", first.distance(held));
    }

    /// Feeds keyframes every `gop_ms` for `until_ms`; returns the stream times thumbnails were
    /// taken at (each one made at once).
    fn taken_at(interval_s: i32, gop_ms: i64, until_ms: i64) -> Vec<i64> {
        let mut pacer = Pacer::new(interval_s);
        let mut taken = Vec::new();
        for dts in (0..until_ms).step_by(gop_ms as usize) {
            if pacer.due(dts) {
                pacer.taken(dts);
                pacer.busy.store(false, Ordering::Release);
                taken.push(dts);
            }
        }
        taken
    }

    #[test]
    fn one_thumbnail_per_interval_on_average_whatever_the_gop() {
        assert_eq!(taken_at(5, 1000, 30_000), [0, 5000, 10_000, 15_000, 20_000, 25_000]);
        assert_eq!(taken_at(5, 2000, 30_000), [0, 6000, 10_000, 16_000, 20_000, 26_000]);
        // A GOP longer than the interval: every keyframe, and the grid starts again from there.
        assert_eq!(taken_at(5, 8000, 30_000), [0, 8000, 16_000, 24_000]);
    }

    #[test]
    fn none_while_the_last_one_is_being_made_and_deferred_keyframes_are_retried() {
        let mut pacer = Pacer::new(5);
        assert!(pacer.due(0));
        pacer.taken(0);
        assert!(!pacer.due(5000), "the previous thumbnail is still being made");
        pacer.busy.store(false, Ordering::Release);
        assert!(!pacer.due(2000));
        // Due at 5 s; no slot then (not taken), so the keyframe at 7 s is.
        assert!(pacer.due(5000));
        assert!(pacer.due(7000));
        pacer.taken(7000);
        pacer.busy.store(false, Ordering::Release);
        assert!(!pacer.due(9000));
        assert!(pacer.due(10_000), "still on the 5 s grid");
    }

    /// Every size a source may have, odd ones and those whose thumbnail comes out odd (1080x720 is
    /// 640x427), makes a JPEG of that size: before, an odd height panicked in libjpeg-turbo.
    #[test]
    fn the_jpeg_keeps_the_picture_where_it_was() {
        // Odd sizes, so every plane is padded: a white top-left quarter on black.
        let (w, h) = (37usize, 23usize);
        let y: Vec<u8> = (0..w * h).map(|i| if i % w < w / 2 && i / w < h / 2 { 255 } else { 0 }).collect();
        let chroma = vec![128u8; w.div_ceil(2) * h.div_ceil(2)];
        let jpeg = encode_jpeg(&y, &chroma, &chroma, w, h).expect("encoded");
        let grey = image::load_from_memory(&jpeg).expect("decoded").to_luma8();
        assert_eq!(grey.dimensions(), (w as u32, h as u32));
        for (x, y, bright) in [(2, 2, true), (15, 8, true), (30, 2, false), (2, 20, false), (36, 22, false)] {
            let seen = grey.get_pixel(x, y).0[0];
            assert_eq!(seen > 128, bright, "({x}, {y}) is {seen}");
        }
    }

    #[test]
    fn planes_of_the_wrong_size_are_refused() {
        let y = vec![0u8; 16 * 16];
        let c = [0u8; 8 * 8];
        for (y, u, v, w, h) in [
            (&y[..], &c[..], &c[..], 16, 17),
            (&y[..10], &c[..], &c[..], 16, 16),
            (&y[..], &c[..3], &c[..], 16, 16),
            (&y[..], &c[..], &c[..0], 16, 16),
            (&y[..0], &c[..0], &c[..0], 0, 0),
        ] {
            assert!(matches!(encode_jpeg(y, u, v, w, h), Err(ThumbnailError::Malformed(_))), "{w}x{h}");
        }
    }

    #[test]
    fn odd_sizes_make_whole_thumbnails() {
        for (w, h) in [(1080, 720), (1366, 768), (853, 480), (641, 427), (1, 1), (3, 5), (2, 1), (640, 427), (7, 2)] {
            let frame =
                OwnedPlanes { data: Bytes::from(vec![128u8; OwnedPlanes::frame_len(w, h)]), width: w, height: h };
            let rendered = render_planes(&frame.planes()).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
            let decoded = image::load_from_memory(&rendered.jpeg).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
            let (tw, th) = thumbnail_size(w as u32, h as u32);
            assert_eq!((decoded.width(), decoded.height()), (tw, th), "{w}x{h}");
        }
    }
}
