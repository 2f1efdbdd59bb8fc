//! One channel's live window, held in memory: init segments, the last few segments and their
//! parts, and a version counter that wakes blocking playlist and part requests the moment media
//! arrives. Writers (the ingest session) and readers (HTTP) meet here; the lock is never held
//! across an await.

use bytes::Bytes;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use olive_media_mux::playlist::{PinRange, Playlist, PlaylistPart, PlaylistSegment, RenditionReport};
use olive_media_mux::{AudioConfig, Part, VideoConfig};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// Complete segments kept in the window (about 16 s at the default 2 s target: more than the
/// 12 s a delta update may skip).
pub const WINDOW_SEGMENTS: usize = 8;

#[derive(Debug)]
struct LivePart {
    index: u32,
    duration_ms: i64,
    independent: bool,
    bytes: Bytes,
}

#[derive(Debug)]
struct LiveSegment {
    msn: u64,
    program_date_time: DateTime<Utc>,
    init_version: u32,
    discontinuity: bool,
    parts: Vec<LivePart>,
    duration_ms: Option<i64>,
}

#[derive(Debug)]
struct Window {
    inits: BTreeMap<u32, Bytes>,
    init_version: u32,
    segments: VecDeque<LiveSegment>,
    target_duration_s: u64,
    segment_target_ms: i64,
    part_target_ms: i64,
    discontinuity_sequence: u64,
    ended: bool,
    /// Set by a new publishing session until its first segment opens.
    pending_discontinuity: bool,
    /// Wall-clock time at stream time 0 of the current session.
    origin: DateTime<Utc>,
    /// Stream time where the last part published ends: the next part starts here.
    media_end_ms: i64,
    next_msn: u64,
    /// Pins whose moment is still in the window.
    pins: Vec<PinRange>,
    /// The tracks of the current session's init segment.
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
}

/// What a multivariant playlist says of a rendition, from its window.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionShape {
    pub video: Option<VideoConfig>,
    pub audio: Option<AudioConfig>,
    /// Bits per second of the window's complete segments: the highest and the average
    /// (RFC 8216bis §4.4.6.2). `None` before the first complete segment.
    pub peak_bps: Option<u64>,
    pub average_bps: Option<u64>,
}

/// What a blocking request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Part { msn: u64, index: u32 },
    Segment { msn: u64 },
}

#[derive(Debug)]
pub struct LiveChannel {
    window: Mutex<Window>,
    version: watch::Sender<u64>,
}

impl LiveChannel {
    /// An empty window; its first segment will get `first_msn`.
    pub fn new(segment_target_ms: i64, part_target_ms: i64, first_msn: u64) -> Self {
        LiveChannel {
            window: Mutex::new(Window {
                inits: BTreeMap::new(),
                init_version: 0,
                segments: VecDeque::new(),
                target_duration_s: ((segment_target_ms + 999) / 1000).max(1) as u64,
                segment_target_ms,
                part_target_ms,
                discontinuity_sequence: 0,
                ended: false,
                pending_discontinuity: false,
                origin: Utc::now(),
                media_end_ms: 0,
                next_msn: first_msn,
                pins: Vec::new(),
                video: None,
                audio: None,
            }),
            version: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().expect("live window poisoned")
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// The sequence number a new publishing session should start at.
    pub fn next_msn(&self) -> u64 {
        self.lock().next_msn
    }

    /// A publishing session began and sent its init segment; `origin` is the wall-clock time of
    /// its stream time 0. A session after an earlier one is a discontinuity. Returns the init
    /// segment's version.
    pub fn begin_session(&self, init: Bytes, origin: DateTime<Utc>) -> u32 {
        self.begin_session_with(init, origin, None, None)
    }

    /// [`begin_session`](Self::begin_session), remembering the init segment's tracks (what the
    /// multivariant playlist says of this rendition).
    pub fn begin_session_with(
        &self,
        init: Bytes,
        origin: DateTime<Utc>,
        video: Option<VideoConfig>,
        audio: Option<AudioConfig>,
    ) -> u32 {
        let mut w = self.lock();
        w.ended = false;
        w.origin = origin;
        w.media_end_ms = 0;
        drop(w);
        self.reconfigure(init, video, audio)
    }

    /// The broadcaster changed its encoding within the session (a new resolution): the next
    /// segment starts under the new init segment, after an `EXT-X-DISCONTINUITY`, on the same
    /// timeline. Returns the init segment's version.
    pub fn reconfigure(&self, init: Bytes, video: Option<VideoConfig>, audio: Option<AudioConfig>) -> u32 {
        let mut w = self.lock();
        w.video = video;
        w.audio = audio;
        w.init_version += 1;
        let v = w.init_version;
        w.inits.insert(v, init);
        w.pending_discontinuity = !w.segments.is_empty();
        drop(w);
        self.bump();
        v
    }

    pub fn push_part(&self, part: Part) {
        add_part(&mut self.lock(), part);
        self.bump();
    }

    pub fn end_segment(&self, msn: u64, duration_ms: i64) {
        close_segment(&mut self.lock(), msn, duration_ms);
        self.bump();
    }

    /// A segment's last part and the segment's end, shown to readers together. Published one
    /// after the other, a blocking request woken between the two would be told (by the preload
    /// hint) to wait for one more part of that segment, which is never cut: a 404.
    pub fn push_last_part(&self, part: Part, duration_ms: i64) {
        let msn = part.segment;
        let mut w = self.lock();
        add_part(&mut w, part);
        close_segment(&mut w, msn, duration_ms);
        drop(w);
        self.bump();
    }

    /// No more media: the playlist gets `EXT-X-ENDLIST`.
    pub fn end_stream(&self) {
        self.lock().ended = true;
        self.bump();
    }

    /// Where the media timeline is now: the program date-time at which the part being produced
    /// begins. `None` before the first part and after the stream ended.
    pub fn media_now(&self) -> Option<DateTime<Utc>> {
        let w = self.lock();
        if w.segments.is_empty() || w.ended {
            return None;
        }
        Some(w.origin + ChronoDuration::milliseconds(w.media_end_ms))
    }

    /// The segment and part targets it was made with, in milliseconds.
    pub fn targets(&self) -> (i64, i64) {
        let w = self.lock();
        (w.segment_target_ms, w.part_target_ms)
    }

    /// The wall-clock time of the current session's stream time 0.
    pub fn session_origin(&self) -> DateTime<Utc> {
        self.lock().origin
    }

    /// The last part published (segment, index), for other renditions' reports.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        let w = self.lock();
        let last = w.segments.back()?;
        last.parts.last().map(|p| (last.msn, p.index))
    }

    /// Its tracks and bit rates, for the multivariant playlist.
    pub fn shape(&self) -> RenditionShape {
        let w = self.lock();
        let complete = w.segments.iter().filter_map(|s| {
            let ms = s.duration_ms.filter(|ms| *ms > 0)?;
            let bits = s.parts.iter().map(|p| p.bytes.len() as u64 * 8).sum::<u64>();
            Some((bits, ms as u64))
        });
        let (mut peak, mut bits, mut ms) = (None::<u64>, 0u64, 0u64);
        for (b, d) in complete {
            let rate = b * 1000 / d;
            peak = Some(peak.map_or(rate, |p| p.max(rate)));
            bits += b;
            ms += d;
        }
        RenditionShape {
            video: w.video.clone(),
            audio: w.audio.clone(),
            peak_bps: peak,
            average_bps: (ms > 0).then(|| bits * 1000 / ms),
        }
    }

    /// Adds a pin to the playlist as `EXT-X-DATERANGE` timed metadata.
    pub fn add_pin(&self, pin: PinRange) {
        self.lock().pins.push(pin);
        self.bump();
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    pub fn has_media(&self) -> bool {
        !self.lock().segments.is_empty()
    }

    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(self.lock().target_duration_s)
    }

    /// The playlist text, or `None` before the first part exists.
    pub fn playlist(&self, skip: bool) -> Option<String> {
        self.playlist_with_reports(skip, &[])
    }

    /// The playlist text with `EXT-X-RENDITION-REPORT`s of the ladder's other renditions.
    pub fn playlist_with_reports(&self, skip: bool, reports: &[RenditionReport]) -> Option<String> {
        let w = self.lock();
        if w.segments.is_empty() {
            return None;
        }
        let segments: Vec<PlaylistSegment> = w
            .segments
            .iter()
            .map(|s| PlaylistSegment {
                msn: s.msn,
                program_date_time: s.program_date_time,
                init_version: s.init_version,
                discontinuity: s.discontinuity,
                parts: s
                    .parts
                    .iter()
                    .map(|p| PlaylistPart { index: p.index, duration_ms: p.duration_ms, independent: p.independent })
                    .collect(),
                duration_ms: s.duration_ms,
            })
            .collect();
        let playlist = Playlist {
            segments: &segments,
            pins: &w.pins,
            target_duration_s: w.target_duration_s,
            part_target_ms: w.part_target_ms,
            discontinuity_sequence: w.discontinuity_sequence,
            ended: w.ended,
            rendition_reports: reports,
        };
        Some(playlist.render(skip))
    }

    pub fn init(&self, version: u32) -> Option<Bytes> {
        self.lock().inits.get(&version).cloned()
    }

    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        let w = self.lock();
        let s = w.segments.iter().find(|s| s.msn == msn)?;
        s.parts.iter().find(|p| p.index == index).map(|p| p.bytes.clone())
    }

    /// A complete segment: its parts in order (a segment is nothing but its parts, so it is
    /// served without copying them together).
    pub fn segment(&self, msn: u64) -> Option<Vec<Bytes>> {
        let w = self.lock();
        let s = w.segments.iter().find(|s| s.msn == msn && s.duration_ms.is_some())?;
        Some(s.parts.iter().map(|p| p.bytes.clone()).collect())
    }

    /// Whether `wanted` is available now; `None` when it never will be (ended, or fell out of
    /// the window).
    fn status(&self, wanted: Wanted) -> Option<bool> {
        let w = self.lock();
        let (msn, index) = match wanted {
            Wanted::Part { msn, index } => (msn, Some(index)),
            Wanted::Segment { msn } => (msn, None),
        };
        if let Some(s) = w.segments.iter().find(|s| s.msn == msn) {
            let ready = match index {
                Some(i) => s.parts.iter().any(|p| p.index == i) || s.duration_ms.is_some(),
                None => s.duration_ms.is_some(),
            };
            if ready {
                return Some(true);
            }
        } else if w.segments.back().is_some_and(|last| last.msn > msn) {
            return Some(true); // already past it
        } else if w.segments.front().is_some_and(|first| first.msn > msn) {
            return None; // slid out of the window
        }
        if w.ended {
            return None;
        }
        Some(false)
    }

    /// Waits until `wanted` exists (true), it never will (false), or `limit` passes (false).
    pub async fn wait_for(&self, wanted: Wanted, limit: Duration) -> bool {
        let mut changes = self.version.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.status(wanted) {
                Some(true) => return true,
                None => return false,
                Some(false) => {}
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return self.status(wanted) == Some(true),
            }
        }
    }

    /// How far ahead of the window a request may ask: the next segment and the one after.
    pub fn is_too_far_ahead(&self, msn: u64) -> bool {
        msn > self.lock().next_msn + 1
    }
}

fn add_part(w: &mut Window, part: Part) {
    if w.segments.back().is_none_or(|s| s.msn != part.segment) {
        let discontinuity = std::mem::take(&mut w.pending_discontinuity);
        let segment = LiveSegment {
            msn: part.segment,
            program_date_time: w.origin + ChronoDuration::milliseconds(part.start_ms),
            init_version: w.init_version,
            discontinuity,
            parts: Vec::new(),
            duration_ms: None,
        };
        w.segments.push_back(segment);
        w.next_msn = part.segment + 1;
    }
    w.media_end_ms = part.start_ms + part.duration_ms;
    let segment = w.segments.back_mut().expect("just ensured");
    segment.parts.push(LivePart {
        index: part.index,
        duration_ms: part.duration_ms,
        independent: part.independent,
        bytes: part.bytes,
    });
}

fn close_segment(w: &mut Window, msn: u64, duration_ms: i64) {
    if let Some(s) = w.segments.iter_mut().find(|s| s.msn == msn) {
        s.duration_ms = Some(duration_ms);
        // Rounded segment durations must not exceed the target (RFC 8216bis §4.4.3.1); a GOP
        // longer than the configured target raises it.
        let rounded = ((duration_ms + 500) / 1000).max(1) as u64;
        w.target_duration_s = w.target_duration_s.max(rounded);
    }
    while w.segments.iter().filter(|s| s.duration_ms.is_some()).count() > WINDOW_SEGMENTS {
        if let Some(second) = w.segments.get(1).map(|s| s.program_date_time) {
            w.pins.retain(|p| p.start >= second);
        }
        if let Some(old) = w.segments.pop_front() {
            if w.segments.front().is_some_and(|s| s.discontinuity) {
                w.discontinuity_sequence += 1;
            }
            let still_used = w.segments.iter().any(|s| s.init_version == old.init_version);
            if !still_used && old.init_version != w.init_version {
                w.inits.remove(&old.init_version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn part(segment: u64, index: u32) -> Part {
        Part {
            segment,
            index,
            start_ms: (segment as i64 * 2000) + index as i64 * 500,
            duration_ms: 500,
            independent: index == 0,
            bytes: Bytes::from(format!("{segment}.{index};")),
        }
    }

    fn publish_segment(live: &LiveChannel, msn: u64) {
        for i in 0..4 {
            live.push_part(part(msn, i));
        }
        live.end_segment(msn, 2000);
    }

    /// Readers never see a segment's last part without its end: the preload hint then names the
    /// next segment's first part, not a part of the finished segment that will never be cut.
    #[test]
    fn a_segments_last_part_and_its_end_are_seen_together() {
        let live = LiveChannel::new(2000, 500, 0);
        live.begin_session(Bytes::from_static(b"init"), Utc::now());
        for i in 0..3 {
            live.push_part(part(0, i));
        }
        assert!(live.playlist(false).unwrap().contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-0-3.m4s\""));
        let before = *live.version.borrow();
        live.push_last_part(part(0, 3), 2000);
        assert_eq!(*live.version.borrow(), before + 1, "one wake-up for both");
        let text = live.playlist(false).unwrap();
        assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-1-0.m4s\""), "{text}");
        assert_eq!(live.segment(0).unwrap().concat(), b"0.0;0.1;0.2;0.3;");
    }

    #[test]
    fn segments_are_their_parts_and_the_window_slides() {
        let live = LiveChannel::new(2000, 500, 0);
        assert!(live.playlist(false).is_none());
        live.begin_session(Bytes::from_static(b"init"), Utc::now());
        for msn in 0..20 {
            publish_segment(&live, msn);
        }
        assert_eq!(live.segment(19).unwrap().concat(), b"19.0;19.1;19.2;19.3;");
        assert_eq!(live.part(19, 2).unwrap(), "19.2;");
        assert!(live.segment(0).is_none(), "slid out");
        let text = live.playlist(false).unwrap();
        assert!(text.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}", 20 - WINDOW_SEGMENTS)));
        assert_eq!(live.init(1).unwrap(), "init");
        assert_eq!(live.next_msn(), 20);
    }

    #[test]
    fn a_second_session_is_a_discontinuity_with_its_own_init() {
        let live = LiveChannel::new(2000, 500, 40);
        live.begin_session(Bytes::from_static(b"a"), Utc::now());
        publish_segment(&live, 40);
        live.begin_session(Bytes::from_static(b"b"), Utc::now());
        publish_segment(&live, live.next_msn());
        let text = live.playlist(false).unwrap();
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\""), "{text}");
        assert!(text.contains("seg-41.m4s"));
        assert_eq!(live.init(2).unwrap(), "b");
    }

    #[test]
    fn a_new_resolution_is_a_discontinuity_on_the_same_timeline() {
        let origin = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").unwrap().with_timezone(&Utc);
        let live = LiveChannel::new(2000, 500, 0);
        live.begin_session(Bytes::from_static(b"a"), origin);
        publish_segment(&live, 0);
        live.reconfigure(Bytes::from_static(b"b"), None, None);
        publish_segment(&live, 1);
        let text = live.playlist(false).unwrap();
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\""), "{text}");
        assert_eq!(live.init(1).unwrap(), "a", "the first init stays while its segment is in the window");
        assert_eq!(live.session_origin(), origin, "the clock runs on");
        assert_eq!(live.media_now(), Some(origin + chrono::Duration::milliseconds(4000)), "{text}");
    }

    #[test]
    fn pins_are_timed_metadata_at_the_part_being_produced() {
        let origin = DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z").unwrap().with_timezone(&Utc);
        let live = LiveChannel::new(2000, 500, 0);
        assert_eq!(live.media_now(), None);
        live.begin_session(Bytes::new(), origin);
        live.push_part(part(0, 0));
        live.push_part(part(0, 1));
        // Parts 0 and 1 cover 0–1 s; the next starts at 1 s.
        let now = live.media_now().unwrap();
        assert_eq!(now, origin + ChronoDuration::milliseconds(1000));
        live.add_pin(PinRange { id: 7, product_id: 12, start: now });
        let text = live.playlist(false).unwrap();
        assert!(
            text.contains("#EXT-X-DATERANGE:ID=\"pin-7\",CLASS=\"com.olive.pin\",START-DATE=\"2026-11-26T10:00:01.000Z\",X-PRODUCT-ID=\"12\"\n"),
            "{text}"
        );
        assert!(live.playlist(true).unwrap().contains("pin-7"), "delta updates keep pins");
        // Once its moment slides out of the window, the pin goes too.
        for msn in 0..12 {
            publish_segment(&live, msn);
        }
        assert!(!live.playlist(false).unwrap().contains("DATERANGE"));
        live.end_stream();
        assert_eq!(live.media_now(), None);
    }

    #[test]
    fn long_segments_raise_the_target_duration() {
        let live = LiveChannel::new(2000, 500, 0);
        live.begin_session(Bytes::new(), Utc::now());
        live.push_part(part(0, 0));
        live.end_segment(0, 5000);
        assert!(live.playlist(false).unwrap().contains("#EXT-X-TARGETDURATION:5\n"));
    }

    #[tokio::test]
    async fn blocking_requests_wake_when_media_arrives() {
        let live = Arc::new(LiveChannel::new(2000, 500, 0));
        live.begin_session(Bytes::new(), Utc::now());
        live.push_part(part(0, 0));
        assert!(live.wait_for(Wanted::Part { msn: 0, index: 0 }, Duration::from_millis(10)).await);
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.wait_for(Wanted::Part { msn: 0, index: 1 }, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        live.push_part(part(0, 1));
        assert!(waiter.await.unwrap());
        // Nothing comes: the wait ends at its limit.
        assert!(!live.wait_for(Wanted::Segment { msn: 3 }, Duration::from_millis(20)).await);
        // An ended stream answers at once.
        live.end_stream();
        assert!(!live.wait_for(Wanted::Part { msn: 1, index: 0 }, Duration::from_secs(5)).await);
        assert!(live.is_too_far_ahead(5));
        assert!(!live.is_too_far_ahead(1));
    }
}
