//! FLV as a byte stream (the file format: a 9-byte header, then tags each followed by its size), the
//! way the transcoder is fed and read back. RTMP carries FLV tag *payloads*; this module wraps them
//! into tags ([`header`], [`tag`]) and splits a stream back into them ([`TagReader`]), checking
//! that a whole tag is buffered before parsing it, as `mini-redis`'s `Frame::check` does.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Tag types we carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    /// Script data (`onMetaData`): skipped by readers.
    Script,
}

impl TagKind {
    fn code(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }
}

/// One FLV tag: its payload is what RTMP would have carried in an audio or video message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagKind,
    /// Milliseconds (the 24-bit timestamp and its 8-bit extension).
    pub timestamp: u32,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlvStreamError {
    #[error("the stream does not start with an FLV header")]
    NotFlv,
    #[error("an FLV tag of type {0} is not audio, video or script data")]
    UnknownTag(u8),
    #[error("an FLV tag of {0} bytes is larger than the {1} bytes allowed")]
    TooLarge(usize, usize),
}

/// The file header for a stream with video and (if `audio`) audio, and the first "previous tag
/// size" (zero).
pub fn header(audio: bool) -> Bytes {
    let flags = if audio { 0x05 } else { 0x01 };
    Bytes::copy_from_slice(&[b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// A tag and the size field that follows it.
pub fn tag(kind: TagKind, timestamp: u32, payload: &[u8]) -> Bytes {
    let size = payload.len().min(0x00ff_ffff);
    let mut out = BytesMut::with_capacity(11 + size + 4);
    out.put_u8(kind.code());
    out.put_uint(size as u64, 3);
    out.put_uint(u64::from(timestamp & 0x00ff_ffff), 3);
    out.put_u8((timestamp >> 24) as u8);
    out.put_uint(0, 3); // stream id
    out.put_slice(&payload[..size]);
    out.put_u32(11 + size as u32);
    out.freeze()
}

/// Splits an FLV byte stream into tags as its bytes arrive.
#[derive(Debug)]
pub struct TagReader {
    buffer: BytesMut,
    header_seen: bool,
    max_tag: usize,
}

impl TagReader {
    /// A reader refusing tags whose payload is larger than `max_tag` bytes.
    pub fn new(max_tag: usize) -> Self {
        TagReader { buffer: BytesMut::new(), header_seen: false, max_tag }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole tag, `Ok(None)` when more bytes are needed. An error is final: the stream
    /// cannot be resynchronised.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, FlvStreamError> {
        if !self.header_seen {
            if self.buffer.len() < 9 {
                return if self.buffer.iter().zip(b"FLV").all(|(a, b)| a == b) {
                    Ok(None)
                } else {
                    Err(FlvStreamError::NotFlv)
                };
            }
            if &self.buffer[..3] != b"FLV" {
                return Err(FlvStreamError::NotFlv);
            }
            let offset = u32::from_be_bytes([self.buffer[5], self.buffer[6], self.buffer[7], self.buffer[8]]) as usize;
            if !(9..=1024).contains(&offset) {
                return Err(FlvStreamError::NotFlv);
            }
            // The header, then the first previous-tag-size field.
            if self.buffer.len() < offset + 4 {
                return Ok(None);
            }
            self.buffer.advance(offset + 4);
            self.header_seen = true;
        }
        loop {
            if self.buffer.len() < 11 {
                return Ok(None);
            }
            let code = self.buffer[0] & 0x1f;
            let size =
                (usize::from(self.buffer[1]) << 16) | (usize::from(self.buffer[2]) << 8) | usize::from(self.buffer[3]);
            let kind = match code {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                18 => TagKind::Script,
                other => return Err(FlvStreamError::UnknownTag(other)),
            };
            if size > self.max_tag {
                return Err(FlvStreamError::TooLarge(size, self.max_tag));
            }
            if self.buffer.len() < 11 + size + 4 {
                return Ok(None);
            }
            let timestamp = (u32::from(self.buffer[4]) << 16)
                | (u32::from(self.buffer[5]) << 8)
                | u32::from(self.buffer[6])
                | (u32::from(self.buffer[7]) << 24);
            self.buffer.advance(11);
            let payload = self.buffer.split_to(size).freeze();
            self.buffer.advance(4);
            if kind == TagKind::Script {
                continue;
            }
            return Ok(Some(Tag { kind, timestamp, payload }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(tags: &[(TagKind, u32, &[u8])]) -> Vec<u8> {
        let mut out = header(true).to_vec();
        for (kind, ts, payload) in tags {
            out.extend_from_slice(&tag(*kind, *ts, payload));
        }
        out
    }

    fn read_all(reader: &mut TagReader) -> Result<Vec<Tag>, FlvStreamError> {
        let mut tags = Vec::new();
        while let Some(t) = reader.next_tag()? {
            tags.push(t);
        }
        Ok(tags)
    }

    #[test]
    fn tags_round_trip_with_extended_timestamps_and_script_data_skipped() {
        let bytes = stream(&[
            (TagKind::Script, 0, b"onMetaData"),
            (TagKind::Video, 0x1234_5678, &[0x17, 0, 0, 0, 0]),
            (TagKind::Audio, 40, &[0xaf, 1, 2]),
        ]);
        let mut reader = TagReader::new(1 << 20);
        reader.push(&bytes);
        let tags = read_all(&mut reader).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(
            (tags[0].kind, tags[0].timestamp, &tags[0].payload[..]),
            (TagKind::Video, 0x1234_5678, &[0x17, 0, 0, 0, 0][..])
        );
        assert_eq!((tags[1].kind, tags[1].timestamp), (TagKind::Audio, 40));
    }

    #[test]
    fn hostile_streams_are_refused_clearly() {
        let mut reader = TagReader::new(1 << 20);
        reader.push(b"GIF89a....");
        assert_eq!(reader.next_tag(), Err(FlvStreamError::NotFlv));

        let mut reader = TagReader::new(16);
        let mut bytes = header(false).to_vec();
        bytes.extend_from_slice(&tag(TagKind::Video, 0, &[0; 17]));
        reader.push(&bytes);
        assert_eq!(reader.next_tag(), Err(FlvStreamError::TooLarge(17, 16)));

        let mut reader = TagReader::new(1 << 20);
        let mut bytes = header(false).to_vec();
        bytes.extend_from_slice(&[0x07, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 12]);
        reader.push(&bytes);
        assert_eq!(reader.next_tag(), Err(FlvStreamError::UnknownTag(7)));

        // A header claiming its data starts 4 GiB in.
        let mut reader = TagReader::new(1 << 20);
        reader.push(&[b'F', b'L', b'V', 1, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(reader.next_tag(), Err(FlvStreamError::NotFlv));
    }

    proptest! {
        /// However the bytes are split, the same tags come out.
        #[test]
        fn any_split_gives_the_same_tags(cuts in proptest::collection::vec(1usize..64, 1..40)) {
            let payloads: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; usize::from(i) * 7 + 1]).collect();
            let tags: Vec<(TagKind, u32, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| (if i % 3 == 0 { TagKind::Audio } else { TagKind::Video }, i as u32 * 33, &p[..]))
                .collect();
            let bytes = stream(&tags);
            let mut reader = TagReader::new(1 << 20);
            let mut got = Vec::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= bytes.len() { break; }
                let end = (at + cut).min(bytes.len());
                reader.push(&bytes[at..end]);
                at = end;
                got.extend(read_all(&mut reader).unwrap());
            }
            prop_assert_eq!(got.len(), tags.len());
            for (g, (kind, ts, payload)) in got.iter().zip(&tags) {
                prop_assert_eq!((g.kind, g.timestamp, &g.payload[..]), (*kind, *ts, *payload));
            }
        }
    }
}
